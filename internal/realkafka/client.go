package realkafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"

	"github.com/twmb/franz-go/pkg/kgo"
)

// clientNamespace makes the namespace where clients run: on the cluster's
// bridge, every node's name resolvable, and the release at /opt/kafka,
// so that Kafka's tools and kcat run there as on a machine of the
// cluster's network.
func (cl *Cluster) clientNamespace() error {
	cl.client = "client." + cl.bridge
	veth := "v" + cl.bridge[2:] + "c"
	addr := netip.AddrFrom4([4]byte{cl.gateway.As4()[0], cl.gateway.As4()[1], cl.gateway.As4()[2], 5})
	for _, s := range [][]string{
		{"ip", "netns", "add", cl.client},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", cl.client},
		{"ip", "link", "set", veth, "master", cl.bridge, "up"},
		{"ip", "-n", cl.client, "addr", "add", fmt.Sprintf("%s/%d", addr, cl.prefix), "dev", "eth0"},
		{"ip", "-n", cl.client, "link", "set", "eth0", "up"},
		{"ip", "-n", cl.client, "link", "set", "lo", "up"},
	} {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	root, err := mountRoot(kafkaHome)
	if err != nil {
		return err
	}
	ctr := filepath.Join(cl.Dir, "client-root")
	if err := os.MkdirAll(filepath.Join(ctr, kafkaHome), 0o755); err != nil {
		return err
	}
	script := fmt.Sprintf(`#!/bin/sh
set -eu
mount --bind %[1]s/hosts /etc/hosts
mount --bind %[2]s%[3]s %[3]s
mount --bind %[4]s %[5]s
cd "$KAFKA_BOOTC_CLIENT_DIR"
exec "$@"
`, cl.Dir, ctr, root, cl.dist.Dir, kafkaHome)
	return os.WriteFile(filepath.Join(cl.Dir, "client.sh"), []byte(script), 0o755)
}

// Client runs argv in the clients' namespace, in dir, as root: a machine
// on the cluster's network with the release's tools at /opt/kafka/bin.
// It returns the standard output; a failure's error holds the standard
// error.
func (cl *Cluster) Client(ctx context.Context, dir string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", cl.client, "unshare", "--mount", "--propagation", "private", "sh", filepath.Join(cl.Dir, "client.sh")}, argv...)...)
	cmd.Env = append(os.Environ(), "KAFKA_BOOTC_CLIENT_DIR="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, lastLines(stderr.String(), 15))
	}
	return stdout.Bytes(), nil
}

// ClientFiles issues a client identity from the cluster's CA and writes
// the files that the client function writes for it into a new directory
// under the cluster's, which it returns.
func (cl *Cluster) ClientFiles(name string) (string, error) {
	if cl.CA == nil {
		return "", errors.New("client files: the cluster is plaintext")
	}
	return cl.ClientFilesFrom(cl.CA, name)
}

// ClientFilesFrom is ClientFiles with another CA: a client that the
// cluster does not trust.
func (cl *Cluster) ClientFilesFrom(ca *pki.CA, name string) (string, error) {
	certPEM, keyPEM, err := ca.Issue(nodes.ClientIdentity(name, 30), time.Now())
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(cl.Dir, "client-"+name+"-")
	if err != nil {
		return "", err
	}
	os.Chmod(dir, 0o755)
	for _, f := range cl.C.ClientFiles(name, certPEM, keyPEM, ca.TrustPEM) {
		if err := os.WriteFile(filepath.Join(dir, f.Path), f.Content, f.Mode); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// Kafka is a franz-go client in the test process, reaching the brokers
// over the cluster's bridge by their names, with the identity whose files
// are in dir (tls mode; "" in plaintext mode).
func (cl *Cluster) Kafka(dir string, opts ...kgo.Opt) (*kgo.Client, error) {
	var tlsConfig *tls.Config
	if dir != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
		if err != nil {
			return nil, err
		}
		caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	dial := func(ctx context.Context, network, host string) (net.Conn, error) {
		name, port, err := net.SplitHostPort(host)
		if err != nil {
			return nil, err
		}
		addr, ok := cl.Addr(name)
		if !ok {
			return nil, fmt.Errorf("%s: no node of that name", name)
		}
		d := &net.Dialer{Timeout: 10 * time.Second}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(addr.String(), port))
		if err != nil || tlsConfig == nil {
			return conn, err
		}
		cfg := tlsConfig.Clone()
		cfg.ServerName = name
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(cl.C.Bootstrap(), ",")...), kgo.Dialer(dial)}, opts...)...)
}

// Tool runs one of Kafka's tools that take --command-config (kafka-topics.sh,
// kafka-acls.sh, ...) from the clients' namespace, as the identity whose
// files are in dir, against the cluster's brokers.
func (cl *Cluster) Tool(ctx context.Context, dir, tool string, args ...string) ([]byte, error) {
	argv := []string{"/opt/kafka/bin/" + tool, "--bootstrap-server", cl.C.Bootstrap()}
	if cl.C.TLS {
		argv = append(argv, "--command-config", "client.properties")
	}
	return cl.Client(ctx, dir, append(argv, args...)...)
}
