package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"dagger/kafka-bootc/internal/bootdisktest"
	"dagger/kafka-bootc/internal/sshdtest"
	"dagger/kafka-bootc/lab"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/remote"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func writeSpec(t *testing.T, s nodes.Spec) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "spec.json")
	os.WriteFile(f, b, 0o644)
	return f
}

func writeFile(t *testing.T, content string) string {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte(content), 0o644)
	return f
}

// TestBadArgumentsAreOneClearError: the command checks what it is given
// before it touches the network.
func TestBadArgumentsAreOneClearError(t *testing.T) {
	spec := writeSpec(t, nodes.Default())
	bad := nodes.Default()
	bad.Brokers = 0
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: kafka-bootc-lab smoke|up"},
		{[]string{"boot"}, "usage: kafka-bootc-lab smoke|up"},
		{[]string{"smoke", "-spec", "/nonexistent"}, "spec: open /nonexistent"},
		{[]string{"smoke", "-spec", writeSpec(t, bad), "-disks", t.TempDir()}, "brokers: 0: must be from 1"},
		{[]string{"smoke", "-spec", spec, "-disks", t.TempDir()}, "no <node>/qcow2/disk.qcow2 for kafka-broker-1"},
		{[]string{"up", "-spec", spec, "-disks", t.TempDir(), "-accel", "xen"}, `accel "xen"`},
		{[]string{"smoke", "-spec", spec, "-disks", t.TempDir(), "-upgrade", writeFile(t, "kafka-broker-1 quay.io/me/kafka-broker-1:latest\n")}, "upgrade: "},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUpForwardsEveryNodesSSH: up boots the stand-in disks of a 1+1
// cluster, prints the addresses file for running, forwards each node's
// SSH on its port, checks the host keys given for node names, and ends
// cleanly when stopped.
func TestUpForwardsEveryNodesSSH(t *testing.T) {
	bootdisktest.Require(t)
	s := nodes.Default()
	s.Brokers, s.Controllers, s.Security = 1, 1, nodes.SecurityPlaintext
	s.AdminUser = ""
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub, priv := sshdtest.NewKey(t)
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	var known []byte
	for _, n := range c.Nodes {
		disk := filepath.Join(dir, n.Name, lab.DiskPath)
		bootdisktest.Disk(t, n.Name, n.Hostname, authorized, disk, "SSH_USER="+c.Disk.User)
		host, _ := os.ReadFile(disk + ".hostkey.pub")
		known = append(known, n.Name+" "+string(host)...)
	}
	keyFile := filepath.Join(dir, "id")
	knownFile := filepath.Join(dir, "known_hosts")
	os.WriteFile(keyFile, priv, 0o600)
	os.WriteFile(knownFile, known, 0o600)
	base := 20000 + os.Getpid()%20000
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, log syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"up", "-spec", writeSpec(t, s), "-disks", dir, "-run", t.TempDir(), "-identity", keyFile,
			"-known-hosts", knownFile, "-memory", "256", "-cpus", "1", "-accel", "tcg", "-listen", "127.0.0.1",
			"-bridge", fmt.Sprintf("kbu%d", os.Getpid()%100000), "-subnet", "192.168.215.0/24", "-ssh-port-base", fmt.Sprint(base),
			"-boot-timeout", "3m"}, &out, &log)
	}()
	for !strings.Contains(out.String(), "every node answers over SSH") {
		select {
		case err := <-done:
			t.Fatalf("up ended: %v\n%s\n%s", err, out.String(), log.String())
		case <-time.After(500 * time.Millisecond):
		}
	}
	want := fmt.Sprintf("kafka-broker-1=127.0.0.1:%d\nkafka-controller-1=127.0.0.1:%d\n", base+1, base+2)
	if !strings.Contains(out.String(), want) {
		t.Errorf("up does not print the addresses file:\n%s", out.String())
	}
	for i, n := range c.Nodes {
		addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(base+i+1))
		host, _ := os.ReadFile(filepath.Join(dir, n.Name, lab.DiskPath) + ".hostkey.pub")
		hostKey, _, _, _, _ := ssh.ParseAuthorizedKey(host)
		user, err := remote.New(remote.Config{User: c.Disk.User, PrivateKey: priv, KnownHosts: []byte(knownhosts.Line([]string{addr}, hostKey) + "\n"), Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		got, err := user.Run(ctx, addr, []string{"cat", "/etc/hostname"})
		user.Close()
		if strings.TrimSpace(string(got)) != n.Hostname {
			t.Errorf("%s's forwarded SSH at %s: %q %v", n.Name, addr, got, err)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("up stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up does not stop")
	}
}
