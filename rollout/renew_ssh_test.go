package rollout

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/sshdtest"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
	"dagger/kafka-bootc/remote"

	"golang.org/x/crypto/ssh"
)

// kafkaListener stands in for a node's Kafka listener on a free port:
// TLS with the pair its Kafka unit last started with (served.pem in the
// node's state), requiring a client certificate.
func kafkaListener(t *testing.T, state string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := &tls.Config{ClientAuth: tls.RequireAnyClientCert, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		pair, err := os.ReadFile(filepath.Join(state, "served.pem"))
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(pair, pair)
		return &cert, err
	}}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				s := tls.Server(conn, cfg)
				s.Handshake()
				s.Close()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// renewOverSSH renews a 1+1 cluster of stand-in nodes behind real sshds:
// each runs the role image's own TLS tool on a directory of its state,
// and its Kafka listener is reached through sshd's forwarding, as on a
// node. prepare, when given, sees the nodes before the renewal.
func renewOverSSH(t *testing.T, o Options, prepare func(map[string]sshNode)) (map[string]sshNode, *pki.CA, string, error) {
	t.Helper()
	s := nodes.Default()
	s.Brokers, s.Controllers = 1, 1
	states := map[nodes.Role]string{nodes.Broker: t.TempDir(), nodes.Controller: t.TempDir()}
	s.Broker.Port = kafkaListener(t, states[nodes.Broker])
	s.Controller.Port = kafkaListener(t, states[nodes.Controller])
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := newTestCA(t, "cluster CA")
	_, key := sshdtest.NewKey(t)
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]sshNode{}
	var ns []health.Node
	var knownHosts []byte
	for _, n := range c.Nodes {
		state := states[n.Role]
		os.WriteFile(filepath.Join(state, "dispatch"), []byte(dispatch), 0o755)
		os.WriteFile(filepath.Join(state, "booted"), []byte(old), 0o644)
		img, err := c.RoleImage(n.Role)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range img.Files {
			if f.Path == nodes.TLSToolPath {
				tool := strings.Replace(string(f.Content), "dir=/etc/kafka-bootc/tls\n", "dir="+filepath.Join(state, "tls-dir")+"\n", 1)
				os.WriteFile(filepath.Join(state, "tls"), []byte(tool), 0o755)
			}
		}
		os.Mkdir(filepath.Join(state, "tls-dir"), 0o700)
		certPEM, keyPEM, err := ca.Issue(c.NodeIdentity(n, []pki.SAN{{DNS: n.Name + ".lab.example"}}, 365), time.Now().AddDate(0, 0, -340))
		if err != nil {
			t.Fatal(err)
		}
		pair := pki.Bundle(keyPEM, certPEM)
		for _, f := range []string{"tls-dir/node.pem", "served.pem", "first.pem"} {
			os.WriteFile(filepath.Join(state, f), pair, 0o400)
		}
		os.WriteFile(filepath.Join(state, "tls-dir/ca.crt"), ca.TrustPEM, 0o644)
		sn := sshNode{Server: sshdtest.Start(t, "ForceCommand "+filepath.Join(state, "dispatch")), state: state}
		os.WriteFile(filepath.Join(sn.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600)
		byName[n.Name] = sn
		ns = append(ns, health.Node{Node: n, Host: sn.Addr, Published: old})
		knownHosts = append(knownHosts, sn.KnownHosts(sn.HostKey)...)
	}
	if _, err := exec.LookPath("cmp"); err != nil {
		t.Skip("skipped: cmp (diffutils) is not installed")
	}
	if prepare != nil {
		prepare(byName)
	}
	run, err := remote.New(remote.Config{User: byName["kafka-broker-1"].ClientUser, PrivateKey: key, KnownHosts: knownHosts, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	out, err := Renew(context.Background(), run, c, ns, ca, 365, o)
	return byName, ca, out, err
}

// TestRenewalOverSSH: each node's new pair is installed by the image's
// own tool, read back from its Kafka listener through sshd, and accepted
// by openssl verify against the node's own trust store.
func TestRenewalOverSSH(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("skipped: openssl is not installed")
	}
	byName, _, out, err := renewOverSSH(t, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, " renewed\n") != 2 {
		t.Errorf("result:\n%s", out)
	}
	for name, n := range byName {
		dir := filepath.Join(n.state, "tls-dir")
		if n.file("tls-dir/node.pem") == n.file("first.pem") || n.file("tls-dir/node.pem.previous") != n.file("first.pem") {
			t.Errorf("%s: the new pair is not installed with the old one kept", name)
		}
		if fi, err := os.Stat(filepath.Join(dir, "node.pem")); err != nil || fi.Mode().Perm() != 0o400 {
			t.Errorf("%s: node.pem: %v %v", name, fi.Mode(), err)
		}
		verify, err := exec.Command(openssl, "verify", "-purpose", "sslserver", "-CAfile", filepath.Join(dir, "ca.crt"), filepath.Join(dir, "node.pem")).CombinedOutput()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(verify)), ": OK") {
			t.Errorf("%s: openssl verify: %v\n%s", name, err, verify)
		}
	}
}

// TestAFailedRenewalOverSSHRestoresTheOldPair: the broker's Kafka fails
// with its new pair; the health gate gives up, the tool puts the old pair
// back, and the broker's Kafka runs it again. The gate's timeout leaves
// the controller's checks, a few SSH round trips each, time to pass on a
// loaded machine; the broker's failure lasts, so it gives up all the same.
func TestAFailedRenewalOverSSHRestoresTheOldPair(t *testing.T) {
	o := fast
	o.Timeout, o.Poll = 12*time.Second, time.Second
	byName, _, _, err := renewOverSSH(t, o, func(ns map[string]sshNode) {
		os.WriteFile(filepath.Join(ns["kafka-broker-1"].state, "fail-with-new"), nil, 0o644)
	})
	if err == nil || !strings.Contains(err.Error(), "renewal stopped at kafka-broker-1") ||
		!strings.Contains(err.Error(), "restored its previous certificate and restarted its units") {
		t.Fatalf("%v", err)
	}
	b := byName["kafka-broker-1"]
	if b.file("tls-dir/node.pem") != b.file("first.pem") || b.file("served.pem") != b.file("first.pem") {
		t.Errorf("the broker does not run its old pair again")
	}
	if _, err := os.Stat(filepath.Join(b.state, "unit-failed")); err == nil {
		t.Errorf("the broker's Kafka is still failed")
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("a key in the error")
	}
}
