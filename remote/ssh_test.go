package remote

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshd is a real OpenSSH server on 127.0.0.1 with a host key of its own,
// which lets in one client key.
type sshd struct {
	addr    string
	hostKey ssh.PublicKey
	// ecdsaKey is a second host key of the server, of another type.
	ecdsaKey   ssh.PublicKey
	clientKey  []byte
	clientUser string
	// restart stops the server and starts it again, as a reboot does.
	restart func()
}

func newKey(t *testing.T) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, pem.EncodeToMemory(block)
}

func startSSHD(t *testing.T) sshd {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
		if _, err := os.Stat(bin); err != nil {
			t.Skip("skipped: sshd (Debian's openssh-server) is not installed")
		}
	}
	if os.Getuid() != 0 {
		t.Skip("skipped: sshd needs root to log a user in")
	}
	dir := t.TempDir()
	hostPub, hostPriv := newKey(t)
	clientPub, clientPriv := newKey(t)
	os.WriteFile(filepath.Join(dir, "host_key"), hostPriv, 0o600)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecBlock, err := ssh.MarshalPrivateKey(ec, "")
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ssh.NewPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "host_key_ecdsa"), pem.EncodeToMemory(ecBlock), 0o600)
	os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_key
HostKey %[2]s/host_key_ecdsa
AuthorizedKeysFile %[2]s/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile %[2]s/sshd.pid
`, port, dir)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(config), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command(bin, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		cmd.WaitDelay = time.Second
		var log bytes.Buffer
		cmd.Stderr = &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("sshd did not start: %s", log.String())
			}
		}
	}
	stop := func() {
		// sshd's children serve the open connections: end them too, and
		// do not wait for the pipes they may still hold.
		exec.Command("pkill", "-KILL", "-P", fmt.Sprint(cmd.Process.Pid)).Run()
		cmd.Process.Kill()
		cmd.Wait()
	}
	start()
	t.Cleanup(stop)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return sshd{addr: addr, hostKey: hostPub, ecdsaKey: ecPub, clientKey: clientPriv, clientUser: u.Username,
		restart: func() { stop(); start() }}
}

func (d sshd) knownHosts(key ssh.PublicKey) []byte {
	host, port, _ := net.SplitHostPort(d.addr)
	return []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(key)))
}

func (d sshd) client(t *testing.T, mod func(*Config)) (*SSH, error) {
	t.Helper()
	c := Config{User: d.clientUser, PrivateKey: d.clientKey, KnownHosts: d.knownHosts(d.hostKey), Timeout: 5 * time.Second}
	if mod != nil {
		mod(&c)
	}
	s, err := New(c)
	if err == nil {
		t.Cleanup(s.Close)
	}
	return s, err
}

func TestRunPassesEveryWordAsIs(t *testing.T) {
	d := startSSHD(t)
	s, err := d.client(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), d.addr, []string{"printf", "%s|", "a b", "it's", "$HOME", "*"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "a b|it's|$HOME|*|" {
		t.Errorf("output %q", out)
	}
	// The connection is reused, and a failing command says why.
	out, err = s.Run(context.Background(), d.addr, []string{"sh", "-c", "echo partial; echo broken >&2; exit 3"})
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "broken") || string(out) != "partial\n" {
		t.Errorf("failing command: %q, %v", out, err)
	}
}

func TestHostKeysAreAlwaysVerified(t *testing.T) {
	d := startSSHD(t)
	otherHost, _ := newKey(t)
	run := func(mod func(*Config)) (string, error) {
		var log bytes.Buffer
		s, err := d.client(t, func(c *Config) { c.Log = &log; mod(c) })
		if err != nil {
			return "", err
		}
		_, err = s.Run(context.Background(), d.addr, []string{"true"})
		return log.String(), err
	}
	if _, err := run(func(c *Config) { c.KnownHosts = nil }); err == nil || !strings.Contains(err.Error(), "is not in known_hosts") {
		t.Errorf("an unknown host: %v", err)
	}
	log, err := run(func(c *Config) { c.KnownHosts = nil; c.AcceptNewHostKeys = true })
	if err != nil || !strings.Contains(log, "WARNING: accepting the host key of "+d.addr) {
		t.Errorf("an unknown host, accepted when asked: %v, log %q", err, log)
	}
	// A server with keys of two types presents the one known_hosts lists,
	// whichever it is.
	for _, key := range []ssh.PublicKey{d.hostKey, d.ecdsaKey} {
		if _, err := run(func(c *Config) { c.KnownHosts = d.knownHosts(key) }); err != nil {
			t.Errorf("known_hosts lists only the %s key: %v", key.Type(), err)
		}
	}
	for _, accept := range []bool{false, true} {
		_, err := run(func(c *Config) { c.KnownHosts = d.knownHosts(otherHost); c.AcceptNewHostKeys = accept })
		if err == nil || !strings.Contains(err.Error(), "does not match known_hosts: refused") {
			t.Errorf("a changed host key (accept new %v): %v", accept, err)
		}
	}
}

func TestAWrongKeyIsRefusedAndNeverQuoted(t *testing.T) {
	d := startSSHD(t)
	_, other := newKey(t)
	s, err := d.client(t, func(c *Config) { c.PrivateKey = other })
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(context.Background(), d.addr, []string{"true"})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("a key the node does not know: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error quotes the key: %v", err)
	}
	broken := bytes.Replace(d.clientKey, []byte("\n"), []byte("\nX"), 3)
	if _, err := New(Config{User: "kafka", PrivateKey: broken}); err == nil || !strings.HasPrefix(err.Error(), "ssh key: not a private key") || strings.Contains(err.Error(), string(broken[40:60])) {
		t.Errorf("a broken key: %v", err)
	}
}

// TestANodeThatRebootedIsDialledAnew: the connection of a node that went
// away is dropped, and the next command dials the node again.
func TestANodeThatRebootedIsDialledAnew(t *testing.T) {
	d := startSSHD(t)
	s, err := d.client(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), d.addr, []string{"true"}); err != nil {
		t.Fatal(err)
	}
	d.restart()
	var last error
	for range 3 {
		if _, last = s.Run(context.Background(), d.addr, []string{"echo", "back"}); last == nil {
			return
		}
	}
	t.Errorf("still failing after the node came back: %v", last)
}
