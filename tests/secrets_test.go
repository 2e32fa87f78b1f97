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
// dagger CLI and --progress=plain: ca, client, then disk with that CA, a
// pull secret and a password hash, disks with the CA and the password, and
// config. client's directory must hold nothing of the CA's key. The log must hold no line of any private key, nor the pull
// secret, nor the hash; every exported file but disk.qcow2 must hold none
// of them either (the node's key, the pull secret and the hash go only
// inside the disk). It needs an engine, so it runs
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
	// A crypt(3) hash as openssl passwd -6 prints it, for --password.
	const passwordHash = "$6$e2eSalt0q9X$Qm1vV2x8kYw3bA7cN4pL0sD6fG9hJ2kL5zX8cV1bN4mQ7wE0rT3yU6iO9pA2sD5fG8hJ1kL4zX7cV0bN3mQ6w"
	var log bytes.Buffer
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(cli, append(append([]string{}, module...), args...)...)
		cmd.Env = append(os.Environ(), "KAFKA_BOOTC_E2E_HASH="+passwordHash)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			t.Fatalf("dagger %s: %v\n%s", strings.Join(args, " "), err, log.String())
		}
	}
	ca := filepath.Join(dir, "ca")
	run("ca", "-o", ca)
	run("client", "--name", "alice", "--ca-cert", filepath.Join(ca, "ca.crt"), "--ca-key", "file:"+filepath.Join(ca, "ca.key"), "-o", filepath.Join(dir, "alice"))
	// The nodes' pull secret goes the same way as the node's key.
	pullAuth := base64.StdEncoding.EncodeToString([]byte("e2e-robot:pull-secret-token-7f3a9c"))
	pullSecret := `{"auths":{"` + registryHost + `":{"auth":"` + pullAuth + `"}}}`
	authFile := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(authFile, []byte(pullSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every combination of the flags that put a secret on a disk, and the
	// rendered tree: disk with the CA, the pull secret and the password;
	// disks with the CA and the password alone; config.
	outputs := []string{filepath.Join(dir, "disk"), filepath.Join(dir, "disks"), filepath.Join(dir, "rendered")}
	run("disk", "--node", "kafka-broker-1", "--ca-cert", filepath.Join(ca, "ca.crt"), "--ca-key", "file:"+filepath.Join(ca, "ca.key"),
		"--pull-secret", "file:"+authFile, "--password", "env:KAFKA_BOOTC_E2E_HASH", "-o", outputs[0])
	run("disks", "--ca-cert", filepath.Join(ca, "ca.crt"), "--ca-key", "file:"+filepath.Join(ca, "ca.key"),
		"--password", "env:KAFKA_BOOTC_E2E_HASH", "-o", outputs[1])
	run("config", "-o", outputs[2])
	if strings.Contains(log.String(), passwordHash) || strings.Contains(log.String(), "$6$e2eSalt") {
		t.Errorf("the log holds the password hash")
	}
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
	// client exports the client's own key, on purpose, and nothing of the CA's.
	caKeyLines := lines[:0:0]
	if data, err := os.ReadFile(filepath.Join(ca, "ca.key")); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if len(l) > 16 && !strings.HasPrefix(l, "-----") {
				caKeyLines = append(caKeyLines, l)
			}
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "alice")); err == nil {
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(dir, "alice", e.Name()))
			for _, l := range caKeyLines {
				if bytes.Contains(data, []byte(l)) {
					t.Errorf("client's %s holds a line of the CA's key", e.Name())
				}
			}
		}
	}
	if strings.Contains(log.String(), "PRIVATE KEY") {
		t.Errorf("the log holds a PEM private key")
	}
	for _, out := range outputs {
		err := filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
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
			for _, l := range lines {
				if bytes.Contains(data, []byte(l)) {
					t.Errorf("%s holds a line of the CA's or a client's key", p)
				}
			}
			if bytes.Contains(data, []byte(pullAuth)) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString([]byte(pullSecret)))) {
				t.Errorf("%s holds the pull secret; only the disk may", p)
			}
			if bytes.Contains(data, []byte(passwordHash)) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString([]byte(passwordHash)))) {
				t.Errorf("%s holds the password hash; only the disk may", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, disk := range []string{filepath.Join(outputs[0], "kafka-broker-1"), filepath.Join(outputs[1], "kafka-controller-1")} {
		if _, err := os.Stat(filepath.Join(disk, "qcow2", "disk.qcow2")); err != nil {
			t.Errorf("no disk: %v", err)
		}
	}
}
