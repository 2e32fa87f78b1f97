// Package sshdtest starts a real OpenSSH server (Debian's openssh-server)
// on 127.0.0.1 for tests, with a host key of its own and one client key.
package sshdtest

import (
	"bytes"
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
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Server is a running sshd.
type Server struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// HostKey is its ed25519 host key; ECDSAKey a second one, of another
	// type.
	HostKey, ECDSAKey ssh.PublicKey
	// ClientKey is the private key it lets in, as ClientUser.
	ClientKey  []byte
	ClientUser string
	// Dir is the server's private directory.
	Dir  string
	cmd  *exec.Cmd
	bin  string
	t    testing.TB
	conf string
}

// NewKey makes an ed25519 key pair, the private key in OpenSSH PEM.
func NewKey(t testing.TB) (ssh.PublicKey, []byte) {
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

// Start starts sshd with the given extra sshd_config lines, or skips the
// test where sshd is missing or the test does not run as root.
func Start(t testing.TB, extra string) *Server {
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
	hostPub, hostPriv := NewKey(t)
	clientPub, clientPriv := NewKey(t)
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
%[3]s
`, port, dir, extra)
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte(config), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), HostKey: hostPub, ECDSAKey: ecPub,
		ClientKey: clientPriv, ClientUser: u.Username, Dir: dir, bin: bin, t: t, conf: conf}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", s.conf)
	s.cmd.WaitDelay = time.Second
	var log bytes.Buffer
	s.cmd.Stderr = &log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Close()
			return
		}
		if time.Since(start) > 10*time.Second {
			s.t.Fatalf("sshd did not start: %s", log.String())
		}
	}
}

// Stop stops the server and the sessions it serves, as a node that goes
// down does. Stopping twice is harmless.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	exec.Command("pkill", "-KILL", "-P", fmt.Sprint(s.cmd.Process.Pid)).Run()
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server and starts it again, as a reboot does.
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

// KnownHosts is a known_hosts line for the server with the given key.
func (s *Server) KnownHosts(key ssh.PublicKey) []byte {
	host, port, _ := net.SplitHostPort(s.Addr)
	return []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(key)))
}
