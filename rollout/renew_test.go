package rollout

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/fakenodes"
	"dagger/kafka-bootc/internal/tlstest"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
)

// tlsFake is the fake cluster with each node's TLS files, as the TLS tool
// keeps them, and the certificate its Kafka listener presents, which a
// restart of its Kafka unit reloads from node.pem.
type tlsFake struct {
	*fakenodes.Cluster
	mu sync.Mutex
	// files are each node's TLS files by name (node.pem, ca.crt, and their
	// .previous), served is the pair its Kafka presents.
	files  map[string]map[string][]byte
	served map[string][]byte
	// failRestart names a node whose Kafka unit fails whenever it starts
	// with TLS files other than its first.
	failRestart string
	first       map[string]map[string][]byte
	// inputs holds every standard input handed to a node, args the
	// command lines run.
	inputs [][]byte
	args   []string
}

func newTLSFake(t *testing.T, f *fakenodes.Cluster, ca *pki.CA, c *nodes.Cluster, days int) *tlsFake {
	t.Helper()
	tf := &tlsFake{Cluster: f, files: map[string]map[string][]byte{}, served: map[string][]byte{}, first: map[string]map[string][]byte{}}
	for _, n := range c.Nodes {
		certPEM, keyPEM, err := ca.Issue(c.NodeIdentity(n, []pki.SAN{{DNS: n.Name + ".lab.example"}}, days), time.Now().AddDate(0, 0, -300))
		if err != nil {
			t.Fatal(err)
		}
		pair := pki.Bundle(keyPEM, certPEM)
		tf.files[n.Hostname] = map[string][]byte{nodes.NodePEMFile: pair, nodes.CACertFile: ca.TrustPEM}
		tf.served[n.Hostname] = pair
		tf.first[n.Hostname] = maps.Clone(tf.files[n.Hostname])
	}
	return tf
}

func (tf *tlsFake) Run(ctx context.Context, host string, argv []string) ([]byte, error) {
	return tf.RunInput(ctx, host, argv, nil)
}

func (tf *tlsFake) RunInput(ctx context.Context, host string, argv []string, stdin []byte) ([]byte, error) {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	cmd := strings.Join(argv, " ")
	tf.args = append(tf.args, cmd)
	if stdin != nil {
		tf.inputs = append(tf.inputs, stdin)
	}
	files := tf.files[host]
	n := tf.Nodes[host]
	tool := "sudo -n " + nodes.TLSToolPath + " "
	switch {
	case strings.HasPrefix(cmd, tool+"install "):
		name := strings.TrimPrefix(cmd, tool+"install ")
		files[name+".previous"], files[name] = files[name], stdin
		tf.Steps = append(tf.Steps, n.Name+": install "+name)
		return nil, nil
	case strings.HasPrefix(cmd, tool+"restore "):
		name := strings.TrimPrefix(cmd, tool+"restore ")
		files[name] = files[name+".previous"]
		tf.Steps = append(tf.Steps, n.Name+": restore "+name)
		return nil, nil
	case cmd == tool+"show ca.crt":
		return files[nodes.CACertFile], nil
	case strings.HasPrefix(cmd, "sudo -n /usr/bin/systemctl restart kafka-"):
		tf.served[host] = files[nodes.NodePEMFile]
		n.Unit = "active"
		first := tf.first[host]
		if n.Name == tf.failRestart && !(bytes.Equal(files[nodes.NodePEMFile], first[nodes.NodePEMFile]) && bytes.Equal(files[nodes.CACertFile], first[nodes.CACertFile])) {
			n.Unit = "failed"
		}
		tf.Steps = append(tf.Steps, n.Name+": restart kafka")
		return nil, nil
	case cmd == "sudo -n /usr/bin/systemctl restart prometheus.service":
		return nil, nil
	}
	return tf.Cluster.Run(ctx, host, argv)
}

// Dial is the node's Kafka listener on a real socket, presenting the pair
// the unit last started with and requiring a client certificate.
func (tf *tlsFake) Dial(ctx context.Context, host, addr string) (net.Conn, error) {
	tf.mu.Lock()
	pair := tf.served[host]
	unit := tf.Nodes[host].Unit
	tf.mu.Unlock()
	if unit != "active" {
		return nil, fmt.Errorf("%s: connecting to %s on the node: connection refused", host, addr)
	}
	cert, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		return nil, err
	}
	return tlstest.DialListener(ctx, cert)
}

func (tf *tlsFake) cert(t *testing.T, host string) *x509.Certificate {
	t.Helper()
	tf.mu.Lock()
	defer tf.mu.Unlock()
	pair, err := tls.X509KeyPair(tf.files[host][nodes.NodePEMFile], tf.files[host][nodes.NodePEMFile])
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf
}

func newTestCA(t *testing.T, name string) (*pki.CA, []byte) {
	t.Helper()
	cert, key, err := pki.NewCA(name, 3650, time.Now().AddDate(0, 0, -400))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(cert, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// renewCluster is the default cluster, every node's certificate issued
// 300 days ago for 365 days by ca.
func renewCluster(t *testing.T) (*nodes.Cluster, []health.Node, *tlsFake, *pki.CA, []byte) {
	t.Helper()
	c, ns, f := cluster(t)
	ca, key := newTestCA(t, "cluster CA")
	return c, ns, newTLSFake(t, f, ca, c, 365), ca, key
}

// TestRenewalGivesEveryNodeANewCertificateInTheRolloutsOrder: controllers
// first, the leader last of them, then brokers; each node installs a new
// pair, restarts, and presents a certificate with its old names, valid for
// the days asked, before the next.
func TestRenewalGivesEveryNodeANewCertificateInTheRolloutsOrder(t *testing.T) {
	c, ns, tf, ca, key := renewCluster(t)
	var log bytes.Buffer
	o := fast
	o.Log = &log
	out, err := Renew(context.Background(), tf, c, ns, ca, 200, o)
	if err != nil {
		t.Fatal(err)
	}
	var installed []string
	for _, s := range tf.Steps {
		if name, ok := strings.CutSuffix(s, ": install node.pem"); ok {
			installed = append(installed, name)
		}
	}
	want := "kafka-controller-1 kafka-controller-3 kafka-controller-2 kafka-broker-1 kafka-broker-2 kafka-broker-3"
	if strings.Join(installed, " ") != want {
		t.Errorf("order %v, want %s", installed, want)
	}
	roots, _ := pki.ParseTrustBundle(ca.TrustPEM)
	for _, n := range c.Nodes {
		cert := tf.cert(t, n.Hostname)
		if err := pki.Verify(cert, roots, time.Now()); err != nil {
			t.Errorf("%s: the new certificate does not verify: %v", n.Name, err)
		}
		if left := health.DaysLeft(cert, time.Now()); left != 199 {
			t.Errorf("%s: %d days left, want 199", n.Name, left)
		}
		if got := strings.Join(cert.DNSNames, " "); got != n.Name+" "+n.Name+".lab.example" {
			t.Errorf("%s: names %q: the extra name was lost", n.Name, got)
		}
		if !bytes.Equal(tf.served[n.Hostname], tf.files[n.Hostname][nodes.NodePEMFile]) {
			t.Errorf("%s: Kafka does not present the new certificate", n.Name)
		}
		if tf.files[n.Hostname][nodes.NodePEMFile+".previous"] == nil {
			t.Errorf("%s: the old pair was not kept", n.Name)
		}
	}
	if strings.Count(out, "renewed") != 6 {
		t.Errorf("result:\n%s", out)
	}
	noKeys(t, tf, out+log.String(), key)
}

// noKeys checks that no private key, the CA's or a node's, is in text or
// on any command line: keys travel only as standard input.
func noKeys(t *testing.T, tf *tlsFake, text string, caKey []byte) {
	t.Helper()
	if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, string(caKey)) {
		t.Errorf("a key is in the output or the log:\n%s", text)
	}
	for _, a := range tf.args {
		if strings.Contains(a, "PRIVATE KEY") {
			t.Errorf("a key is on a command line: %s", a)
		}
	}
	found := false
	for _, in := range tf.inputs {
		found = found || bytes.Contains(in, []byte("PRIVATE KEY"))
	}
	if len(tf.inputs) > 0 && !found {
		t.Errorf("no key went as standard input, yet keys were installed")
	}
}

// TestAFailedRenewalPutsThePreviousPairBackAndARerunResumes: a broker
// whose Kafka fails with its new certificate gets its old pair back and
// is restarted; the brokers after it are untouched; a rerun skips the
// nodes that the first run renewed.
func TestAFailedRenewalPutsThePreviousPairBackAndARerunResumes(t *testing.T) {
	c, ns, tf, ca, key := renewCluster(t)
	tf.failRestart = "kafka-broker-2"
	before := tf.files["kafka-broker-2"][nodes.NodePEMFile]
	o := fast
	o.Timeout = 3 * time.Second
	var log bytes.Buffer
	o.Log = &log
	_, err := Renew(context.Background(), tf, c, ns, ca, 365, o)
	if err == nil || !strings.Contains(err.Error(), "renewal stopped at kafka-broker-2: waiting for the new certificate") {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(err.Error(), "restored its previous certificate and restarted its units") ||
		!strings.Contains(err.Error(), "kafka-broker-3") || !strings.Contains(err.Error(), "untouched") {
		t.Errorf("the report does not say what it did:\n%v", err)
	}
	if !bytes.Equal(tf.files["kafka-broker-2"][nodes.NodePEMFile], before) || !bytes.Equal(tf.served["kafka-broker-2"], before) {
		t.Errorf("kafka-broker-2 does not run its previous pair again")
	}
	if tf.files["kafka-broker-3"][nodes.NodePEMFile+".previous"] != nil {
		t.Errorf("kafka-broker-3 was touched after the failure")
	}
	noKeys(t, tf, err.Error()+log.String(), key)

	tf.failRestart = ""
	tf.Steps = nil
	out, err := Renew(context.Background(), tf, c, ns, ca, 365, fast)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "renewed already") != 4 || strings.Count(out, " renewed\n") != 2 {
		t.Errorf("the rerun does not resume:\n%s", out)
	}
	if len(tf.Steps) == 0 || !strings.HasPrefix(tf.Steps[0], "kafka-broker-2: install") {
		t.Errorf("the rerun started with %v", tf.Steps)
	}
}

// TestARenewalFromACATheNodesDoNotTrustIsRefused: a certificate from a CA
// that the nodes' trust stores lack would cut each renewed node off; the
// renewal names the first step of a rotation instead, and changes nothing.
func TestARenewalFromACATheNodesDoNotTrustIsRefused(t *testing.T) {
	c, ns, tf, _, _ := renewCluster(t)
	other, _ := newTestCA(t, "new CA")
	_, err := Renew(context.Background(), tf, c, ns, other, 365, fast)
	if err == nil || !strings.Contains(err.Error(), `refusing to start, nothing changed:`) ||
		!strings.Contains(err.Error(), `kafka-controller-1: does not trust the CA "CN=new CA": roll a bundle of the old and the new CA out with trust first`) {
		t.Fatalf("%v", err)
	}
	if len(tf.Steps) != 0 {
		t.Errorf("changed: %v", tf.Steps)
	}
}

// TestARenewalDryRunShowsThePlanAndChangesNothing.
func TestARenewalDryRunShowsThePlanAndChangesNothing(t *testing.T) {
	c, ns, tf, ca, _ := renewCluster(t)
	o := fast
	o.DryRun = true
	out, err := Renew(context.Background(), tf, c, ns, ca, 365, o)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	end := tf.cert(t, "kafka-controller-1").NotAfter.UTC().Format(time.DateOnly)
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "NODE") || !strings.HasPrefix(lines[1], "kafka-controller-1   "+end+"   -            would renew") {
		t.Errorf("plan:\n%s", out)
	}
	if len(tf.Steps) != 0 {
		t.Errorf("a dry run changed %v", tf.Steps)
	}
}

// TestACARotation: trust a bundle of the old and the new CA, renew every
// node from the new CA, then trust the new CA alone; dropping the old CA
// before every node is renewed is refused.
func TestACARotation(t *testing.T) {
	c, ns, tf, oldCA, _ := renewCluster(t)
	newCA, newKey := newTestCA(t, "new CA")
	bundle := append(append([]byte{}, oldCA.CertPEM...), newCA.CertPEM...)

	if _, err := Trust(context.Background(), tf, c, ns, newCA.CertPEM, fast); err == nil ||
		!strings.Contains(err.Error(), `kafka-controller-1: its certificate, issued by "CN=cluster CA", would not be trusted by the bundle`) {
		t.Fatalf("dropping the old CA first: %v", err)
	}
	out, err := Trust(context.Background(), tf, c, ns, bundle, fast)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "trusts it\n") != 6 || !strings.Contains(out, "1 CA         2 CAs") {
		t.Errorf("trust:\n%s", out)
	}
	for host, files := range tf.files {
		if !bytes.Equal(files[nodes.CACertFile], bundle) {
			t.Errorf("%s does not trust the bundle", host)
		}
	}
	if out, err := Trust(context.Background(), tf, c, ns, bundle, fast); err != nil || strings.Count(out, "trusts it already") != 6 {
		t.Errorf("a second trust rollout: %v\n%s", err, out)
	}

	signer, err := pki.LoadCA(bundle, newKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Renew(context.Background(), tf, c, ns, signer, 365, fast); err != nil {
		t.Fatal(err)
	}
	if _, err := Trust(context.Background(), tf, c, ns, newCA.CertPEM, fast); err != nil {
		t.Fatalf("dropping the old CA after the renewal: %v", err)
	}
	roots, _ := pki.ParseTrustBundle(newCA.CertPEM)
	for _, n := range c.Nodes {
		if err := pki.Verify(tf.cert(t, n.Hostname), roots, time.Now()); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
	}
}

// TestAFailedTrustRolloutPutsThePreviousStoreBack: a controller whose
// Kafka fails with the bundle gets its old trust store back; the nodes
// before it keep the bundle, the nodes after it are untouched.
func TestAFailedTrustRolloutPutsThePreviousStoreBack(t *testing.T) {
	c, ns, tf, oldCA, _ := renewCluster(t)
	newCA, _ := newTestCA(t, "new CA")
	bundle := append(append([]byte{}, oldCA.CertPEM...), newCA.CertPEM...)
	tf.failRestart = "kafka-controller-3"
	o := fast
	o.Timeout = 2 * time.Second
	_, err := Trust(context.Background(), tf, c, ns, bundle, o)
	if err == nil || !strings.Contains(err.Error(), "trust rollout stopped at kafka-controller-3: waiting for the Kafka unit") ||
		!strings.Contains(err.Error(), "restored its previous trust store and restarted its units") {
		t.Fatalf("%v", err)
	}
	if !bytes.Equal(tf.files["kafka-controller-3"][nodes.CACertFile], oldCA.TrustPEM) || tf.Nodes["kafka-controller-3"].Unit != "active" {
		t.Errorf("kafka-controller-3 does not run its old trust store again")
	}
	if !bytes.Equal(tf.files["kafka-controller-1"][nodes.CACertFile], bundle) {
		t.Errorf("kafka-controller-1, before the failure, lost the bundle")
	}
	if tf.files["kafka-controller-2"][nodes.CACertFile+".previous"] != nil {
		t.Errorf("kafka-controller-2, after the failure, was touched")
	}
}
