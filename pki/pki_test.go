package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T, days int, now time.Time) (*CA, []byte, []byte) {
	t.Helper()
	cert, key, err := NewCA("test CA", days, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(cert, key, now)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert, key
}

func issue(t *testing.T, ca *CA, id Identity, now time.Time) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(id, now)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("key is not PKCS#8 PEM, the one form Kafka reads")
	}
	// One file holding both, as Kafka and node-exporter read it.
	bundle := Bundle(keyPEM, certPEM)
	pair, err := tls.X509KeyPair(bundle, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func TestNodeCertificatesVerifyAgainstTheCA(t *testing.T) {
	now := time.Now()
	ca, caPEM, _ := newCA(t, 3650, now)
	id := Identity{
		Subject:  pkix.Name{CommonName: "kafka-broker-1", OrganizationalUnit: []string{"kafka-broker"}, Organization: []string{"kafka-bootc"}},
		DNSNames: []string{"kafka-broker-1", "kafka-broker-1.kafka.example.com"},
		IPs:      []net.IP{net.ParseIP("10.0.0.11")},
		Server:   true,
		Days:     365,
	}
	certPEM, _, err := ca.Issue(id, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, name := range []string{"kafka-broker-1", "kafka-broker-1.kafka.example.com", "10.0.0.11"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s, usage %v: %v", name, usage, err)
			}
		}
	}
	if err := cert.VerifyHostname("kafka-broker-2"); err == nil {
		t.Error("the certificate of kafka-broker-1 is valid for kafka-broker-2")
	}
	if d := cert.NotAfter.Sub(now); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("valid for %s, want 365 days", d)
	}
	if cert.IsCA {
		t.Error("a node certificate is a CA")
	}
}

// server starts a TLS server that requires a client certificate from the
// CA pool, as Kafka's listeners do with ssl.client.auth=required, and
// returns a function that dials it with a client certificate (or none).
func server(t *testing.T, serverCert tls.Certificate, caPEM []byte) func(client *tls.Certificate, roots []byte) error {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if conn.(*tls.Conn).Handshake() == nil {
					conn.Write([]byte("ok"))
				}
			}()
		}
	}()
	return func(client *tls.Certificate, roots []byte) error {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(roots)
		cfg := &tls.Config{RootCAs: pool, ServerName: "kafka-broker-1"}
		if client != nil {
			cfg.Certificates = []tls.Certificate{*client}
		}
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		// With TLS 1.3 the server judges the client certificate after
		// the client's handshake is done: its answer tells.
		buf := make([]byte, 2)
		if _, err := conn.Read(buf); err != nil {
			return err
		}
		return nil
	}
}

func TestOnlyClientsOfTheClusterCAGetIn(t *testing.T) {
	now := time.Now()
	ca, caPEM, _ := newCA(t, 3650, now)
	node := issue(t, ca, Identity{Subject: pkix.Name{CommonName: "kafka-broker-1"}, DNSNames: []string{"kafka-broker-1"}, Server: true, Days: 365}, now)
	dial := server(t, node, caPEM)

	alice := issue(t, ca, Identity{Subject: pkix.Name{CommonName: "alice"}, Days: 30}, now)
	if err := dial(&alice, caPEM); err != nil {
		t.Errorf("a client of the cluster CA is refused: %v", err)
	}
	peer := issue(t, ca, Identity{Subject: pkix.Name{CommonName: "kafka-broker-2"}, DNSNames: []string{"kafka-broker-2"}, Server: true, Days: 30}, now)
	if err := dial(&peer, caPEM); err != nil {
		t.Errorf("another node, as a client, is refused: %v", err)
	}

	other, otherPEM, _ := newCA(t, 3650, now)
	mallory := issue(t, other, Identity{Subject: pkix.Name{CommonName: "alice"}, Days: 30}, now)
	if err := dial(&mallory, caPEM); err == nil {
		t.Error("a client certificate from another CA is accepted")
	}
	// The client side checks the node too: a node of another CA is not one.
	if err := dial(&alice, otherPEM); err == nil {
		t.Error("a client accepts a server certificate from another CA")
	}
	expired := issue(t, ca, Identity{Subject: pkix.Name{CommonName: "alice"}, Days: 1}, now.AddDate(0, 0, -2))
	if err := dial(&expired, caPEM); err == nil {
		t.Error("an expired client certificate is accepted")
	}
	if err := dial(nil, caPEM); err == nil {
		t.Error("a client without a certificate is accepted")
	}
}

func TestLoadCARefusesWhatCannotSign(t *testing.T) {
	now := time.Now()
	_, caPEM, caKey := newCA(t, 30, now)
	_, otherPEM, otherKey := newCA(t, 30, now)
	ca, _, _ := newCA(t, 30, now)
	leafPEM, leafKey, err := ca.Issue(Identity{Subject: pkix.Name{CommonName: "leaf"}, Days: 10}, now)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	tests := []struct {
		name       string
		cert, key  []byte
		at         time.Time
		want       string
		keyInError bool
	}{
		{"a key of another CA", caPEM, otherKey, now, "ca key: does not match the CA certificate", false},
		{"a certificate that is not a CA", leafPEM, leafKey, now, `ca cert "CN=leaf": is not a CA certificate`, false},
		{"an expired CA", otherPEM, otherKey, now.AddDate(0, 0, 31), "ca cert \"CN=test CA\": expired on", false},
		{"a key that is not PEM", caPEM, []byte("not a key"), now, "ca key: is not PEM", false},
		{"a certificate that is not PEM", []byte("MIIB"), caKey, now, "ca cert: is not PEM", false},
		{"a certificate where the key goes", caPEM, caPEM, now, `ca key: holds a PEM "CERTIFICATE" block, not a private key`, false},
		{"an RSA key under 2048 bits", caPEM, smallPEM, now, "ca key: an RSA key of 1024 bits: must have at least 2048", false},
		{"a SEC 1 key of another CA", caPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), now, "ca key: does not match", false},
	}
	for _, tc := range tests {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := LoadCA(tc.cert, tc.key, tc.at)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if b, _ := pem.Decode(tc.key); b != nil && strings.Contains(err.Error(), string(pem.EncodeToMemory(b)[30:60])) {
				t.Errorf("the error quotes the key")
			}
		})
	}
}

func TestACertificateCannotOutliveItsCA(t *testing.T) {
	now := time.Now()
	ca, _, _ := newCA(t, 100, now)
	_, _, err := ca.Issue(Identity{Subject: pkix.Name{CommonName: "alice"}, Days: 365}, now)
	if err == nil || !strings.Contains(err.Error(), "cert days 365: the certificate would outlive the CA certificate") {
		t.Errorf("error %v", err)
	}
	for _, days := range []int{0, -1, maxDays + 1} {
		if _, _, err := ca.Issue(Identity{Subject: pkix.Name{CommonName: "alice"}, Days: days}, now); err == nil || !strings.HasPrefix(err.Error(), "cert days") {
			t.Errorf("%d days: error %v", days, err)
		}
	}
}

func TestNamesAndSANs(t *testing.T) {
	for _, ok := range []string{"alice", "svc.orders-1", "a_b"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Alice", "1alice", "al ice", "a,b", "a=b", strings.Repeat("a", 65), "CN=x"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for in, want := range map[string]SAN{
		"kafka.example.com": {DNS: "kafka.example.com"},
		"Kafka-1":           {DNS: "kafka-1"},
		"10.0.0.1":          {IP: net.ParseIP("10.0.0.1")},
		"fd00::1":           {IP: net.ParseIP("fd00::1")},
	} {
		got, err := ParseSAN(in)
		if err != nil || got.DNS != want.DNS || !got.IP.Equal(want.IP) {
			t.Errorf("%q: %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-a.example", "a..b", "10.0.0.256", "a b", "http://x", strings.Repeat("a", 64) + ".com"} {
		if _, err := ParseSAN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEncryptedKeysAreRefusedWithoutEcho(t *testing.T) {
	block := &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("secret-bytes")}
	_, err := ParsePrivateKey(pem.EncodeToMemory(block))
	if err == nil || err.Error() != "is encrypted; give the key without a passphrase, as a Dagger secret" {
		t.Fatalf("error %v", err)
	}
}

// TestACAInABundleSignsWithItsOwnKeyAndTrustsTheBundle: during a CA
// rotation, --ca-cert is the bundle of old and new CA; the key given picks
// the CA that signs, and what it issues is trusted by the whole bundle.
func TestACAInABundleSignsWithItsOwnKeyAndTrustsTheBundle(t *testing.T) {
	now := time.Now()
	oldCert, oldKey, _ := NewCA("old CA", 3650, now)
	newCert, newKey, _ := NewCA("new CA", 3650, now)
	bundle := append(append([]byte{}, oldCert...), newCert...)
	for _, tc := range []struct {
		name string
		key  []byte
		want string
	}{{"the new key", newKey, "new CA"}, {"the old key", oldKey, "old CA"}} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadCA(bundle, tc.key, now)
			if err != nil {
				t.Fatal(err)
			}
			if ca.Cert.Subject.CommonName != tc.want {
				t.Errorf("signs as %q, want %q", ca.Cert.Subject.CommonName, tc.want)
			}
			if string(ca.TrustPEM) != string(bundle) {
				t.Errorf("trust store is not the bundle")
			}
			certPEM, _, err := ca.Issue(Identity{Subject: pkix.Name{CommonName: "n"}, DNSNames: []string{"n"}, Server: true, Days: 30}, now)
			if err != nil {
				t.Fatal(err)
			}
			cert, _ := ParseCertificate(certPEM)
			trust, err := ParseTrustBundle(ca.TrustPEM)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(cert, trust, now); err != nil {
				t.Errorf("the bundle does not verify what it signed: %v", err)
			}
			if !Trusts(trust, ca.Cert) {
				t.Errorf("Trusts: the bundle does not hold its signer")
			}
			own, _ := ParseTrustBundle(oldCert)
			if tc.want == "new CA" && Verify(cert, own, now) == nil {
				t.Errorf("the old CA alone verifies a certificate of the new one")
			}
		})
	}
	single, err := LoadCA(oldCert, oldKey, now)
	if err != nil {
		t.Fatal(err)
	}
	if string(single.TrustPEM) != string(oldCert) || string(single.CertPEM) != string(oldCert) {
		t.Errorf("a single CA's trust store is not its certificate")
	}
	_, strayKey, _ := NewCA("stray", 3650, now)
	if _, err := LoadCA(bundle, strayKey, now); err == nil || err.Error() != "ca key: matches none of the 2 CA certificates of the bundle" {
		t.Errorf("a key of neither CA: %v", err)
	}
	ca, _ := LoadCA(oldCert, oldKey, now)
	leaf, _, _ := ca.Issue(Identity{Subject: pkix.Name{CommonName: "leaf"}, Days: 30}, now)
	if _, err := ParseTrustBundle(append(append([]byte{}, oldCert...), leaf...)); err == nil || !strings.Contains(err.Error(), `ca cert "CN=leaf": is not a CA certificate`) {
		t.Errorf("a bundle with a leaf: %v", err)
	}
	if _, err := ParseTrustBundle([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil || strings.Contains(err.Error(), "AAAA") {
		t.Errorf("a key as a bundle: %v", err)
	}
}
