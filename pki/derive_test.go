package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

func nodeIdentity(extra ...string) Identity {
	return Identity{
		Subject:  pkix.Name{CommonName: "kafka-broker-1", OrganizationalUnit: []string{"kafka-broker"}, Organization: []string{"kafka-bootc"}},
		DNSNames: append([]string{"kafka-broker-1"}, extra...),
		IPs:      []net.IP{net.ParseIP("10.0.0.11")},
		Server:   true,
		Days:     365,
	}
}

// TestADerivedCertificateIsAFunctionOfItsInputs: the same CA, identity and
// day give byte-identical key and certificate, at any hour of the day;
// another name, validity, day or CA gives another key.
func TestADerivedCertificateIsAFunctionOfItsInputs(t *testing.T) {
	day := time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC)
	ca, _, _ := newCA(t, 3650, day.Add(-time.Hour))
	other, _, _ := newCA(t, 3650, day.Add(-time.Hour))
	cert, key, err := ca.IssueDerived(nodeIdentity(), day)
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2, err := ca.IssueDerived(nodeIdentity(), day.Add(13*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert, cert2) || !bytes.Equal(key, key2) {
		t.Error("the same inputs on the same day gave another key or certificate")
	}
	for name, issue := range map[string]func() ([]byte, []byte, error){
		"another name":     func() ([]byte, []byte, error) { return ca.IssueDerived(nodeIdentity("10-0-0-11.example.com"), day) },
		"another validity": func() ([]byte, []byte, error) { id := nodeIdentity(); id.Days = 30; return ca.IssueDerived(id, day) },
		"another day":      func() ([]byte, []byte, error) { return ca.IssueDerived(nodeIdentity(), day.AddDate(0, 0, 1)) },
		"another CA":       func() ([]byte, []byte, error) { return other.IssueDerived(nodeIdentity(), day) },
	} {
		_, k, err := issue()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(k, key) {
			t.Errorf("%s gave the same key", name)
		}
	}
	c, err := ParseCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	if !c.NotBefore.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) || !c.NotAfter.Equal(c.NotBefore.AddDate(0, 0, 365)) {
		t.Errorf("valid %s to %s, want from the day's start for 365 days", c.NotBefore, c.NotAfter)
	}
	if c.SerialNumber.Sign() <= 0 || len(c.SerialNumber.Bytes()) > 20 {
		t.Errorf("serial %v: RFC 5280 wants a positive number of at most 20 octets", c.SerialNumber)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: day, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("does not verify: %v", err)
	}
	priv, err := ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(key); b.Type != "PRIVATE KEY" || !priv.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PublicKey) {
		t.Error("the key is not PKCS#8, or not the certificate's")
	}
}

// TestADerivedCertificateFromAnRSACA: an RSA CA's signatures are
// deterministic too.
func TestADerivedCertificateFromAnRSACA(t *testing.T) {
	day := time.Now()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big1(), Subject: pkix.Name{CommonName: "rsa CA"}, NotBefore: day.AddDate(0, 0, -1), NotAfter: day.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rsaKey.Public(), rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	ca, err := LoadCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), day)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := ca.IssueDerived(nodeIdentity(), day)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := ca.IssueDerived(nodeIdentity(), day)
	if !bytes.Equal(a, b) {
		t.Error("an RSA CA signed the same certificate twice differently")
	}
}

// BenchmarkIssueDerived: the cost of a node's key and certificate, made
// once per disk.
func BenchmarkIssueDerived(b *testing.B) {
	day := time.Now()
	cert, key, err := NewCA("bench CA", 3650, day)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := LoadCA(cert, key, day)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := ca.IssueDerived(nodeIdentity(), day); err != nil {
			b.Fatal(err)
		}
	}
}

func big1() *big.Int { return big.NewInt(1) }
