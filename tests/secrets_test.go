//go:build dagger_offline

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoKeyInTheLogOrOutsideTheDisk runs the commands a user runs, with the
// dagger CLI and --progress=plain: ca, client, then disk with that CA and a
// pull secret. The log must hold no line of any private key, nor the pull
// secret; the disk's directory must hold the node's key and the pull secret
// only inside disk.qcow2. It needs an engine, so it runs
// only when KAFKA_BOOTC_E2E_DAGGER names the CLI:
//
//	KAFKA_BOOTC_E2E_DAGGER=$(command -v dagger) go test -tags dagger_offline -run NoKey ./...
func TestNoKeyInTheLogOrOutsideTheDisk(t *testing.T) {
	cli := daggerCLI(t)
	dir := t.TempDir()
	jar := filepath.Join(dir, "jmx.jar")
	if err := os.WriteFile(jar, []byte(jmxJar), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(jmxJar))
	clusterFile := filepath.Join(dir, "kafka-cluster.yaml")
	if err := os.WriteFile(clusterFile, []byte("version: 1\nregistry: "+registryHost+"/secrets\n"+
		"brokers:\n  count: 1\ncontrollers:\n  count: 1\n"+
		"disk:\n  sshKeys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh e2e@example.com\"]\n"+
		"metrics:\n  jmxExporter:\n    sha256: "+hex.EncodeToString(sum[:])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	module := []string{"call", "-m", "..", "--progress=plain", "--cluster", clusterFile, "--jmx-exporter-jar", jar}
	var log bytes.Buffer
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(cli, append(append([]string{}, module...), args...)...)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			t.Fatalf("dagger %s: %v\n%s", strings.Join(args, " "), err, log.String())
		}
	}
	ca := filepath.Join(dir, "ca")
	run("ca", "-o", ca)
	run("client", "--name", "alice", "--ca-cert", filepath.Join(ca, "ca.crt"), "--ca-key", "file:"+filepath.Join(ca, "ca.key"), "-o", filepath.Join(dir, "alice"))
	disks := filepath.Join(dir, "disks")
	// The nodes' pull secret goes the same way as the node's key.
	pullAuth := base64.StdEncoding.EncodeToString([]byte("e2e-robot:pull-secret-token-7f3a9c"))
	pullSecret := `{"auths":{"` + registryHost + `":{"auth":"` + pullAuth + `"}}}`
	authFile := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(authFile, []byte(pullSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	run("disk", "--node", "kafka-broker-1", "--ca-cert", filepath.Join(ca, "ca.crt"), "--ca-key", "file:"+filepath.Join(ca, "ca.key"),
		"--pull-secret", "file:"+authFile, "-o", disks)
	for _, needle := range []string{pullAuth, "pull-secret-token-7f3a9c", base64.StdEncoding.EncodeToString([]byte(pullSecret))} {
		if strings.Contains(log.String(), needle) {
			t.Errorf("the log holds the pull secret")
		}
	}

	// Every body line of the keys that left on purpose.
	var lines []string
	for _, f := range []string{filepath.Join(ca, "ca.key"), filepath.Join(dir, "alice", "client.key")} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if len(l) > 16 && !strings.HasPrefix(l, "-----") {
				lines = append(lines, l)
			}
		}
	}
	for _, l := range lines {
		if strings.Contains(log.String(), l) {
			t.Errorf("the log holds a line of a private key")
		}
	}
	if strings.Contains(log.String(), "PRIVATE KEY") {
		t.Errorf("the log holds a PEM private key")
	}
	err := filepath.Walk(disks, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() == "disk.qcow2" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) || bytes.Contains(data, []byte("LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t")) {
			t.Errorf("%s holds a private key; only the disk may", p)
		}
		if bytes.Contains(data, []byte(pullAuth)) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString([]byte(pullSecret)))) {
			t.Errorf("%s holds the pull secret; only the disk may", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(disks, "kafka-broker-1", "qcow2", "disk.qcow2")); err != nil {
		t.Errorf("no disk: %v", err)
	}
}
