//go:build dagger_offline

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoKeyInTheLogOrOutsideTheDisk runs the commands a user runs, with the
// dagger CLI and --progress=plain: ca, client, then disk with that CA. The
// log must hold no line of any private key; the disk's directory must hold
// the node's key only inside disk.qcow2. It needs an engine, so it runs
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
	module := []string{"call", "-m", "..", "--progress=plain",
		"--registry", registryHost + "/secrets", "--brokers", "1", "--controllers", "1",
		"--ssh-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh e2e@example.com",
		"--jmx-exporter-jar", jar, "--jmx-exporter-sha256", hex.EncodeToString(sum[:])}
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
	run("disk", "--node", "kafka-broker-1", "--ca-cert", filepath.Join(ca, "ca.crt"), "--ca-key", "file:"+filepath.Join(ca, "ca.key"), "-o", disks)

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
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(disks, "kafka-broker-1", "qcow2", "disk.qcow2")); err != nil {
		t.Errorf("no disk: %v", err)
	}
}
