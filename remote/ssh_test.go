package remote

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/internal/sshdtest"

	"golang.org/x/crypto/ssh"
)

func startSSHD(t *testing.T) *sshdtest.Server { return sshdtest.Start(t, "") }

func client(t *testing.T, d *sshdtest.Server, mod func(*Config)) (*SSH, error) {
	t.Helper()
	c := Config{User: d.ClientUser, PrivateKey: d.ClientKey, KnownHosts: d.KnownHosts(d.HostKey), Timeout: 5 * time.Second}
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
	s, err := client(t, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), d.Addr, []string{"printf", "%s|", "a b", "it's", "$HOME", "*"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "a b|it's|$HOME|*|" {
		t.Errorf("output %q", out)
	}
	// The connection is reused, and a failing command says why.
	out, err = s.Run(context.Background(), d.Addr, []string{"sh", "-c", "echo partial; echo broken >&2; exit 3"})
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "broken") || string(out) != "partial\n" {
		t.Errorf("failing command: %q, %v", out, err)
	}
}

func TestHostKeysAreAlwaysVerified(t *testing.T) {
	d := startSSHD(t)
	otherHost, _ := sshdtest.NewKey(t)
	run := func(mod func(*Config)) (string, error) {
		var log bytes.Buffer
		s, err := client(t, d, func(c *Config) { c.Log = &log; mod(c) })
		if err != nil {
			return "", err
		}
		_, err = s.Run(context.Background(), d.Addr, []string{"true"})
		return log.String(), err
	}
	if _, err := run(func(c *Config) { c.KnownHosts = nil }); err == nil || !strings.Contains(err.Error(), "is not in known_hosts") {
		t.Errorf("an unknown host: %v", err)
	}
	log, err := run(func(c *Config) { c.KnownHosts = nil; c.AcceptNewHostKeys = true })
	if err != nil || !strings.Contains(log, "WARNING: accepting the host key of "+d.Addr) {
		t.Errorf("an unknown host, accepted when asked: %v, log %q", err, log)
	}
	// A server with keys of two types presents the one known_hosts lists,
	// whichever it is.
	for _, key := range []ssh.PublicKey{d.HostKey, d.ECDSAKey} {
		if _, err := run(func(c *Config) { c.KnownHosts = d.KnownHosts(key) }); err != nil {
			t.Errorf("known_hosts lists only the %s key: %v", key.Type(), err)
		}
	}
	for _, accept := range []bool{false, true} {
		_, err := run(func(c *Config) { c.KnownHosts = d.KnownHosts(otherHost); c.AcceptNewHostKeys = accept })
		if err == nil || !strings.Contains(err.Error(), "does not match known_hosts: refused") {
			t.Errorf("a changed host key (accept new %v): %v", accept, err)
		}
	}
}

func TestAWrongKeyIsRefusedAndNeverQuoted(t *testing.T) {
	d := startSSHD(t)
	_, other := sshdtest.NewKey(t)
	s, err := client(t, d, func(c *Config) { c.PrivateKey = other })
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(context.Background(), d.Addr, []string{"true"})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("a key the node does not know: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error quotes the key: %v", err)
	}
	broken := bytes.Replace(d.ClientKey, []byte("\n"), []byte("\nX"), 3)
	if _, err := New(Config{User: "kafka", PrivateKey: broken}); err == nil || !strings.HasPrefix(err.Error(), "ssh key: not a private key") || strings.Contains(err.Error(), string(broken[40:60])) {
		t.Errorf("a broken key: %v", err)
	}
}

// TestANodeThatRebootedIsDialledAnew: the connection of a node that went
// away is dropped, and the next command dials the node again.
func TestANodeThatRebootedIsDialledAnew(t *testing.T) {
	d := startSSHD(t)
	s, err := client(t, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), d.Addr, []string{"true"}); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	var last error
	for range 3 {
		if _, last = s.Run(context.Background(), d.Addr, []string{"echo", "back"}); last == nil {
			return
		}
	}
	t.Errorf("still failing after the node came back: %v", last)
}

// TestRunInputHandsOverContentNotArguments: the input reaches the
// command's standard input whole, and a failing command's error holds its
// standard error but not its input.
func TestRunInputHandsOverContentNotArguments(t *testing.T) {
	d := startSSHD(t)
	s, err := client(t, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	out, err := s.RunInput(context.Background(), d.Addr, []string{"sh", "-c", "cat; echo \"args: $#\""}, secret)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(secret)+"args: 0\n" {
		t.Errorf("output %q", out)
	}
	_, err = s.RunInput(context.Background(), d.Addr, []string{"sh", "-c", "cat >/dev/null; echo refused >&2; exit 1"}, secret)
	if err == nil || !strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), "secret") {
		t.Errorf("failing command: %v", err)
	}
}

// TestDialReachesTheNodesOwnListener: a connection to a port as the node
// sees it, through its sshd; a port where nothing listens is an error that
// names it, and the SSH connection stays usable.
func TestDialReachesTheNodesOwnListener(t *testing.T) {
	d := startSSHD(t)
	s, err := client(t, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("hello from the node\n"))
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	conn, err := s.Dial(context.Background(), d.Addr, "localhost:"+port)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "hello from the node\n" {
		t.Errorf("read %q", got)
	}
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closed, _ := net.SplitHostPort(free.Addr().String())
	free.Close()
	if _, err := s.Dial(context.Background(), d.Addr, "localhost:"+closed); err == nil || !strings.Contains(err.Error(), "connecting to localhost:"+closed+" on the node") {
		t.Errorf("a closed port: %v", err)
	}
	if _, err := s.Run(context.Background(), d.Addr, []string{"true"}); err != nil {
		t.Errorf("after a refused forward: %v", err)
	}
}

func TestParseJumpReadsWhatSshJTakes(t *testing.T) {
	for in, want := range map[string]Hop{
		"admin@bastion.example.com": {"admin", "bastion.example.com:22"},
		"bastion":                   {"", "bastion:22"},
		"root@10.0.0.1:2222":        {"root", "10.0.0.1:2222"},
		"[2001:db8::1]:2200":        {"", "[2001:db8::1]:2200"},
		"core@2001:db8::1":          {"core", "[2001:db8::1]:22"},
	} {
		got, err := ParseJump(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "@bastion", "user@", "a b", "ssh://bastion", "bastion:"} {
		if _, err := ParseJump(bad); err == nil || !strings.Contains(err.Error(), "must be [USER@]HOST[:PORT]") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestJumpHostsCarryEveryConnection: a node reached through one jump
// host, and through two; a jump host that forwards nothing stops it, and
// says which; a jump host whose key known_hosts lacks is refused.
func TestJumpHostsCarryEveryConnection(t *testing.T) {
	node := startSSHD(t)
	jump1 := sshdtest.Start(t, "")
	jump2 := sshdtest.Start(t, "")
	closed := sshdtest.Start(t, "AllowTcpForwarding no")
	// Every server lets in the node's client key.
	for _, j := range []*sshdtest.Server{jump1, jump2, closed} {
		pub, _ := ssh.ParsePrivateKey(node.ClientKey)
		os.WriteFile(filepath.Join(j.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(pub.PublicKey()), 0o600)
	}
	known := func(servers ...*sshdtest.Server) []byte {
		var b []byte
		for _, s := range servers {
			b = append(b, s.KnownHosts(s.HostKey)...)
		}
		return b
	}
	run := func(hosts []byte, jumps ...*sshdtest.Server) (string, error) {
		var hops []Hop
		for _, j := range jumps {
			hops = append(hops, Hop{Addr: j.Addr})
		}
		s, err := client(t, node, func(c *Config) { c.KnownHosts = hosts; c.Jump = hops })
		if err != nil {
			return "", err
		}
		out, err := s.Run(context.Background(), node.Addr, []string{"echo", "through"})
		return string(out), err
	}
	if out, err := run(known(node, jump1), jump1); err != nil || out != "through\n" {
		t.Errorf("through one jump host: %q, %v", out, err)
	}
	if out, err := run(known(node, jump1, jump2), jump1, jump2); err != nil || out != "through\n" {
		t.Errorf("through two: %q, %v", out, err)
	}
	if _, err := run(known(node, closed), closed); err == nil || !strings.Contains(err.Error(), "through "+closed.Addr) {
		t.Errorf("a jump host that forwards nothing: %v", err)
	}
	if _, err := run(known(node), jump1); err == nil || !strings.Contains(err.Error(), "jump host "+jump1.Addr) || !strings.Contains(err.Error(), "is not in known_hosts") {
		t.Errorf("a jump host that known_hosts lacks: %v", err)
	}
}

// silentHost accepts TCP connections and never says a word: a frozen sshd,
// or a node half way through its reboot.
func silentHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestAHostThatNeverFinishesTheHandshakeIsGivenUpOnWithinTheTimeout(t *testing.T) {
	d := startSSHD(t)
	silent := silentHost(t)
	s, err := client(t, d, func(c *Config) {
		// The silent host never shows a key to check.
		c.Timeout = 2 * time.Second
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	hung := make(chan error, 1)
	go func() {
		_, err := s.Run(context.Background(), silent, []string{"true"})
		hung <- err
	}()
	// While the silent host holds its own connection attempt, another node
	// answers at once: one bad node holds up no other.
	time.Sleep(200 * time.Millisecond)
	if out, err := s.Run(context.Background(), d.Addr, []string{"echo", "other"}); err != nil || string(out) != "other\n" {
		t.Errorf("another node, while the silent one hangs: %q, %v", out, err)
	}
	if waited := time.Since(start); waited > time.Second+200*time.Millisecond {
		t.Errorf("another node answered after %s: it waited for the silent one", waited)
	}
	select {
	case err := <-hung:
		if err == nil || !strings.Contains(err.Error(), "does not finish the handshake") || !strings.Contains(err.Error(), silent) {
			t.Errorf("the silent host: %v", err)
		}
		if waited := time.Since(start); waited > 4*time.Second {
			t.Errorf("gave up after %s, want about the 2s timeout", waited)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run on a host that never finishes the handshake did not return")
	}
	// A context that ends first ends the handshake too.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.Run(ctx, silent, []string{"true"}); err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("the silent host, with a context that ends first: %v", err)
	}
}

func TestASilentNodeBehindAJumpHostIsGivenUpOn(t *testing.T) {
	jump := startSSHD(t)
	silent := silentHost(t)
	s, err := client(t, jump, func(c *Config) {
		c.Timeout = 2 * time.Second
		c.Jump = []Hop{{Addr: jump.Addr}}
		c.AcceptNewHostKeys = true
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Run(context.Background(), silent, []string{"true"})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "does not finish the handshake") {
			t.Errorf("a silent node through a jump host: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run through a jump host on a node that never finishes the handshake did not return")
	}
	// The jump host itself still carries the next connection.
	if out, err := s.Run(context.Background(), jump.Addr, []string{"echo", "ok"}); err != nil || string(out) != "ok\n" {
		t.Errorf("after the silent node, through the same jump host: %q, %v", out, err)
	}
}

// TestAnAcceptedHostKeyIsPinnedForTheRestOfTheOperation: with new host
// keys accepted, a node that comes back from a reboot with another key
// (another machine at its address) is refused, and the log gives the line
// that keeps the first key.
func TestAnAcceptedHostKeyIsPinnedForTheRestOfTheOperation(t *testing.T) {
	d := startSSHD(t)
	var log bytes.Buffer
	s, err := client(t, d, func(c *Config) { c.KnownHosts = nil; c.AcceptNewHostKeys = true; c.Log = &log })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), d.Addr, []string{"true"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "pinned for the rest of this operation") || strings.Count(log.String(), "WARNING") != 1 {
		t.Errorf("log after the first connection: %q", log.String())
	}
	// The same key again, after a reboot, is taken without a word.
	d.Restart()
	var last error
	for range 3 {
		if _, last = s.Run(context.Background(), d.Addr, []string{"true"}); last == nil {
			break
		}
	}
	if last != nil || strings.Count(log.String(), "WARNING") != 1 {
		t.Errorf("the same key after a reboot: %v, log %q", last, log.String())
	}
	// Another machine answers at the node's address, with its own keys.
	_, otherKey := sshdtest.NewKey(t)
	os.WriteFile(filepath.Join(d.Dir, "host_key"), otherKey, 0o600)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	block, _ := ssh.MarshalPrivateKey(ec, "")
	os.WriteFile(filepath.Join(d.Dir, "host_key_ecdsa"), pem.EncodeToMemory(block), 0o600)
	d.Restart()
	for range 3 {
		if _, last = s.Run(context.Background(), d.Addr, []string{"true"}); last != nil && strings.Contains(last.Error(), "changed since it was accepted") {
			break
		}
	}
	if last == nil || !strings.Contains(last.Error(), "changed since it was accepted earlier in this operation") {
		t.Errorf("another key at the pinned host: %v", last)
	}
	// The logged line is a known_hosts line that a new client accepts.
	_, line, _ := strings.Cut(log.String(), "add to known_hosts:\n")
	s2, err := client(t, d, func(c *Config) { c.KnownHosts = []byte(line) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Run(context.Background(), d.Addr, []string{"true"}); err == nil || !strings.Contains(err.Error(), "does not match known_hosts") {
		t.Errorf("the kept line, against the other machine: %v", err)
	}
}
