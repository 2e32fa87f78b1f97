// Package remote runs commands on the cluster's nodes over SSH, with
// golang.org/x/crypto/ssh. Host keys are always verified against a
// known_hosts file: an unknown host is accepted only when asked for, and a
// host whose key changed never is.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"dagger/kafka-bootc/internal/shell"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config says how to reach the nodes.
type Config struct {
	// User logs in on every node.
	User string
	// PrivateKey is the user's key, OpenSSH or PEM, without a passphrase.
	PrivateKey []byte
	// KnownHosts holds the nodes' host keys, in known_hosts format.
	KnownHosts []byte
	// AcceptNewHostKeys accepts the key of a host that KnownHosts does not
	// list, and says so on Log. A host listed with another key is refused
	// all the same.
	AcceptNewHostKeys bool
	// Log receives the warnings; nil discards them.
	Log io.Writer
	// Timeout bounds connecting to a node; 0 means 30 seconds.
	Timeout time.Duration
	// Jump lists the SSH hosts that every connection goes through, in
	// order, as ssh -J does: a bastion, or the hypervisor of the nodes'
	// network. Each logs in with the same key, and its host key is
	// checked against the same known_hosts.
	Jump []Hop
}

// SSH runs commands on nodes, one connection per node, reused.
type SSH struct {
	cfg     *ssh.ClientConfig
	known   ssh.HostKeyCallback
	timeout time.Duration
	// mu guards clients and connecting; a node's connection is made under
	// its own lock in connecting, so that a node that never answers holds
	// up only the callers that want that node.
	mu         sync.Mutex
	clients    map[string]*ssh.Client
	connecting map[string]*sync.Mutex
	// jumps are the hops every connection goes through, and hops their
	// clients while connected, the last one nearest the nodes.
	jumps  []Hop
	jumpMu sync.Mutex
	hops   []*ssh.Client
	// pinned are the host keys accepted during this operation, by host.
	pinMu  sync.Mutex
	pinned map[string]ssh.PublicKey
}

// New checks the configuration. Its errors never quote the key.
func New(c Config) (*SSH, error) {
	if c.User == "" {
		return nil, errors.New("ssh user: required")
	}
	signer, err := ssh.ParsePrivateKey(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("ssh key: not a private key in OpenSSH or PEM format without a passphrase (%v)", err)
	}
	known, err := knownHosts(c.KnownHosts)
	if err != nil {
		return nil, err
	}
	log := c.Log
	if log == nil {
		log = io.Discard
	}
	s := &SSH{known: known, clients: map[string]*ssh.Client{}, connecting: map[string]*sync.Mutex{}, jumps: c.Jump, pinned: map[string]ssh.PublicKey{}}
	verify := func(host string, remote net.Addr, key ssh.PublicKey) error {
		s.pinMu.Lock()
		defer s.pinMu.Unlock()
		if pin, ok := s.pinned[host]; ok {
			if bytes.Equal(pin.Marshal(), key.Marshal()) {
				return nil
			}
			return fmt.Errorf("host key of %s (%s) changed since it was accepted earlier in this operation (%s): refused", host, ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(pin))
		}
		err := known(host, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) > 0:
			return fmt.Errorf("host key of %s (%s) does not match known_hosts: refused; if the node was rebuilt, replace its line", host, ssh.FingerprintSHA256(key))
		case errors.As(err, &ke) && c.AcceptNewHostKeys:
			// Accepted once, the key is pinned: a reconnect, after a
			// reboot say, must meet the same key.
			s.pinned[host] = key
			fmt.Fprintf(log, "WARNING: accepting the host key of %s, which known_hosts does not list: %s %s; it is pinned for the rest of this operation; to keep it, add to known_hosts:\n%s", host, key.Type(), ssh.FingerprintSHA256(key), knownhosts.Line([]string{knownhosts.Normalize(host)}, key)+"\n")
			return nil
		case errors.As(err, &ke):
			return fmt.Errorf("host %s is not in known_hosts: add its key (ssh-keyscan %s), or accept new host keys explicitly", host, strings.Split(host, ":")[0])
		}
		return err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	s.cfg = &ssh.ClientConfig{
		User:            c.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: verify,
		Timeout:         timeout,
	}
	s.timeout = timeout
	return s, nil
}

// knownHosts reads known_hosts content; the knownhosts package reads files
// only, so it goes through one that is removed at once.
func knownHosts(content []byte) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "known_hosts")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	cb, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, fmt.Errorf("known hosts: %w", err)
	}
	return cb, nil
}

// Run runs argv on host (host or host:port, port 22 by default), each
// word quoted for the login shell, and returns its standard output. When
// the command fails, the error holds its exit status and standard error.
func (s *SSH) Run(ctx context.Context, host string, argv []string) ([]byte, error) {
	return s.run(ctx, host, argv, nil)
}

// RunInput runs argv as Run does, with stdin as its standard input: how a
// file's content reaches a node, a key among them, without ever being on
// a command line. Errors hold the command and its standard error, never
// its input.
func (s *SSH) RunInput(ctx context.Context, host string, argv []string, stdin []byte) ([]byte, error) {
	return s.run(ctx, host, argv, stdin)
}

// Dial opens a TCP connection to addr as the node at host sees it, through
// the node's SSH server, as ssh -L does: the node's own listeners are
// reached at localhost, wherever the caller sits.
func (s *SSH) Dial(ctx context.Context, host, addr string) (net.Conn, error) {
	client, err := s.client(ctx, host)
	if err != nil {
		return nil, err
	}
	conn, err := client.DialContext(ctx, "tcp", addr)
	if err != nil {
		var refused *ssh.OpenChannelError
		if !errors.As(err, &refused) {
			s.drop(host, client)
		}
		return nil, fmt.Errorf("%s: connecting to %s on the node: %w", host, addr, err)
	}
	return conn, nil
}

func (s *SSH) run(ctx context.Context, host string, argv []string, stdin []byte) ([]byte, error) {
	client, err := s.client(ctx, host)
	if err != nil {
		return nil, err
	}
	// A node that rebooted leaves a connection that may never answer
	// again: give up on it after the timeout, and dial anew next time.
	opened := make(chan error, 1)
	var session *ssh.Session
	go func() {
		var err error
		session, err = client.NewSession()
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			s.drop(host, client)
			return nil, fmt.Errorf("%s: %w", host, err)
		}
	case <-time.After(s.timeout):
		s.drop(host, client)
		return nil, fmt.Errorf("%s: no answer within %s", host, s.timeout)
	case <-ctx.Done():
		s.drop(host, client)
		return nil, fmt.Errorf("%s: %w", host, ctx.Err())
	}
	defer session.Close()
	var stdout, stderr bytes.Buffer
	session.Stdout, session.Stderr = &stdout, &stderr
	if stdin != nil {
		session.Stdin = bytes.NewReader(stdin)
	}
	done := make(chan error, 1)
	go func() { done <- session.Run(shell.Join(argv)) }()
	select {
	case <-ctx.Done():
		// A command that did not answer in time may sit on a connection
		// that is gone: dial anew next time.
		// The session may still write its output: none of it is read.
		s.drop(host, client)
		return nil, fmt.Errorf("%s: %s: %w", host, argv[0], ctx.Err())
	case err := <-done:
		var exit *ssh.ExitError
		if err != nil && !errors.As(err, &exit) {
			// Not the command's failure but the connection's, as when the
			// node reboots: the next Run dials anew.
			s.drop(host, client)
		}
		if err != nil {
			return stdout.Bytes(), fmt.Errorf("%s: %s: %w: %s", host, strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
		}
		return stdout.Bytes(), nil
	}
}

func (s *SSH) client(ctx context.Context, host string) (*ssh.Client, error) {
	s.mu.Lock()
	if c, ok := s.clients[host]; ok {
		s.mu.Unlock()
		return c, nil
	}
	lock, ok := s.connecting[host]
	if !ok {
		lock = &sync.Mutex{}
		s.connecting[host] = lock
	}
	s.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	s.mu.Lock()
	c, ok := s.clients[host]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "22")
	}
	conn, err := s.dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	client, err := s.handshake(ctx, conn, addr, s.cfg.User)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	s.mu.Lock()
	s.clients[host] = client
	s.mu.Unlock()
	return client, nil
}

// handshake logs in over conn to the SSH server at addr, whose host key
// must be in known_hosts. It gives up after the timeout, or when ctx ends:
// a host that accepts TCP and never answers (a frozen sshd, a node half
// way through its reboot) must not hold the caller. ssh.ClientConfig's
// Timeout bounds only the TCP dial of ssh.Dial, and a connection through a
// jump host takes no deadline, so the connection is closed instead.
func (s *SSH) handshake(ctx context.Context, conn net.Conn, addr, user string) (*ssh.Client, error) {
	cfg := *s.cfg
	cfg.User = user
	cfg.HostKeyAlgorithms = s.hostKeyAlgorithms(addr)
	type result struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, chans, reqs, err := ssh.NewClientConn(conn, addr, &cfg)
		done <- result{c, chans, reqs, err}
	}()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	var why error
	select {
	case r := <-done:
		if r.err != nil {
			conn.Close()
			return nil, r.err
		}
		return ssh.NewClient(r.c, r.chans, r.reqs), nil
	case <-timer.C:
		why = fmt.Errorf("ssh handshake: no answer within %s: the host accepts connections, but its SSH server does not finish the handshake", s.timeout)
	case <-ctx.Done():
		why = fmt.Errorf("ssh handshake: %w", ctx.Err())
	}
	conn.Close()
	go func() {
		if r := <-done; r.err == nil {
			r.c.Close()
		}
	}()
	return nil, why
}

// hostKeyAlgorithms are the algorithms of the host keys that known_hosts
// lists for addr, so that a server with several host keys presents one
// that can be checked, as OpenSSH's client does. Empty, for a host that
// known_hosts does not list, lets the server choose.
func (s *SSH) hostKeyAlgorithms(addr string) []string {
	s.pinMu.Lock()
	pin, ok := s.pinned[addr]
	s.pinMu.Unlock()
	if ok {
		return keyAlgorithms(pin.Type())
	}
	// Asking with a key that cannot match makes knownhosts list the keys it
	// has for the host.
	var ke *knownhosts.KeyError
	if err := s.known(addr, &net.TCPAddr{}, probeKey{}); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		algos = append(algos, keyAlgorithms(k.Key.Type())...)
	}
	return algos
}

// keyAlgorithms are the host key algorithms that verify a key of the type.
func keyAlgorithms(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// probeKey is a public key that matches no host.
type probeKey struct{}

func (probeKey) Type() string                        { return "kafka-bootc-probe" }
func (probeKey) Marshal() []byte                     { return []byte("kafka-bootc-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// drop forgets a connection that broke, so that the next Run reconnects:
// a node that rebooted comes back on a new one.
func (s *SSH) drop(host string, c *ssh.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[host] == c {
		delete(s.clients, host)
		c.Close()
	}
}

// Close closes every connection.
func (s *SSH) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for host, c := range s.clients {
		c.Close()
		delete(s.clients, host)
	}
	s.jumpMu.Lock()
	defer s.jumpMu.Unlock()
	s.closeHops()
}
