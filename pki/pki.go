// Package pki issues the cluster's TLS material: a cluster CA, one key and
// certificate per node, and client identities. Keys are ECDSA P-256 (Kafka
// reads RSA, DSA and EC keys; not Ed25519) and leave as PKCS#8 PEM, the only
// private key form Kafka's PEM key stores read.
//
// Nothing here writes a file: the Dagger module decides where the material
// goes, and that no key ever reaches a published image.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"regexp"
	"strings"
	"time"
)

// Bounds on validity, in days.
const (
	// DefaultCADays is a cluster CA's validity: ten years, as long-lived
	// as the cluster is expected to be; rotating it means reissuing every
	// node and client.
	DefaultCADays = 3650
	// DefaultCertDays is a node or client certificate's validity: one year,
	// as Strimzi's default.
	DefaultCertDays = 365
	maxDays         = 36500
)

// CA is a cluster CA whose certificate and key were checked to belong
// together.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is the CA's own certificate.
	CertPEM []byte
	// TrustPEM is what nodes and clients trust: the CA's certificate, or
	// the whole bundle it was given in during a CA rotation.
	TrustPEM []byte
}

// NewCA makes a CA: a self-signed certificate for signing only, valid for
// days from now, and its key.
func NewCA(commonName string, days int, now time.Time) (certPEM, keyPEM []byte, err error) {
	if err := checkDays("ca days", days); err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(commonName) == "" {
		return nil, nil, errors.New("ca name: must not be empty")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, tmpl, key, key)
}

// LoadCA reads a CA certificate and its key, both PEM, and checks that the
// certificate is a CA that may sign now and that the key is its own.
// certPEM may be a trust bundle of several CA certificates, as during a CA
// rotation: the one whose key is given signs, and the bundle is what the
// certificates it issues come with as their trust store. Errors name "ca
// cert" or "ca key" and the rule broken; they never quote the key.
func LoadCA(certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	bundle, err := ParseTrustBundle(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	var cert *x509.Certificate
	for _, c := range bundle {
		if ok && pub.Equal(c.PublicKey) {
			cert = c
			break
		}
	}
	if cert == nil {
		if len(bundle) == 1 {
			return nil, fmt.Errorf("ca key: does not match the CA certificate %q", bundle[0].Subject)
		}
		return nil, fmt.Errorf("ca key: matches none of the %d CA certificates of the bundle", len(bundle))
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("ca cert %q: expired on %s; make a new CA with the ca function", cert.Subject, cert.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("ca cert %q: not valid before %s", cert.Subject, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	own := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	trust := own
	if len(bundle) > 1 {
		trust = certPEM
	}
	return &CA{Cert: cert, Key: key, CertPEM: own, TrustPEM: trust}, nil
}

// ParseTrustBundle reads a trust store: one or more CA certificates in PEM,
// each able to sign certificates. Errors name "ca cert" and the rule.
func ParseTrustBundle(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ca cert: holds a PEM %q block; a CA file or bundle holds CERTIFICATE blocks only", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca cert: block %d is not an X.509 certificate: %w", len(certs)+1, err)
		}
		if !cert.BasicConstraintsValid || !cert.IsCA {
			return nil, fmt.Errorf("ca cert %q: is not a CA certificate (basic constraints CA:TRUE)", cert.Subject)
		}
		if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("ca cert %q: its key usage does not allow signing certificates", cert.Subject)
		}
		if err := checkPublicKey(cert.PublicKey); err != nil {
			return nil, fmt.Errorf("ca cert: %w", err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("ca cert: is not PEM (a file starting -----BEGIN CERTIFICATE-----)")
	}
	return certs, nil
}

// Trusts reports whether a trust bundle holds the CA's certificate.
func Trusts(bundle []*x509.Certificate, ca *x509.Certificate) bool {
	for _, c := range bundle {
		if c.Equal(ca) {
			return true
		}
	}
	return false
}

// Verify checks that cert was signed by one of the bundle's CAs and is
// valid at now, for the usage of a node: server and client authentication.
func Verify(cert *x509.Certificate, bundle []*x509.Certificate, now time.Time) error {
	roots := x509.NewCertPool()
	for _, c := range bundle {
		roots.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
	return err
}

// ParseCertificate reads the first certificate of a PEM file.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("is not PEM (a file starting -----BEGIN CERTIFICATE-----)")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("holds a PEM %q block, not a CERTIFICATE", block.Type)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("is not an X.509 certificate: %w", err)
	}
	return cert, nil
}

// ParsePrivateKey reads a private key in PEM: PKCS#8, PKCS#1 (RSA) or SEC 1
// (EC). An RSA key must have at least 2048 bits. The error never holds the
// key.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("is not PEM (a file starting -----BEGIN PRIVATE KEY-----)")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("is encrypted; give the key without a passphrase, as a Dagger secret")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("holds a PEM %q block, not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM %q block: not a valid private key", block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("PEM %q block: a %T cannot sign", block.Type, key)
	}
	if err := checkPublicKey(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("an RSA key of %d bits: must have at least 2048", k.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("a %T key: must be RSA, ECDSA or Ed25519", pub)
	}
	return nil
}

// Identity is what a certificate says about its holder.
type Identity struct {
	// Subject is the certificate's subject; Kafka maps it to a principal.
	Subject pkix.Name
	// DNSNames and IPs are the subject alternative names.
	DNSNames []string
	IPs      []net.IP
	// Server adds the server authentication usage; every certificate here
	// has client authentication.
	Server bool
	// Days is how long the certificate is valid from now.
	Days int
}

// Issue makes a key and a certificate for id, signed by the CA. The
// certificate may not outlive the CA's.
func (ca *CA) Issue(id Identity, now time.Time) (certPEM, keyPEM []byte, err error) {
	if err := ca.CheckDays(id.Days, now); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := template(id, now.Add(-time.Minute))
	tmpl.NotAfter = now.AddDate(0, 0, id.Days)
	return sign(tmpl, ca.Cert, key, ca.Key)
}

// template is the certificate of id, valid for id.Days from start.
func template(id Identity, start time.Time) *x509.Certificate {
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if id.Server {
		usage = append([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, usage...)
	}
	return &x509.Certificate{
		Subject:     id.Subject,
		DNSNames:    id.DNSNames,
		IPAddresses: id.IPs,
		NotBefore:   start,
		NotAfter:    start.AddDate(0, 0, id.Days),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: usage,
	}
}

// CheckDays reports whether the CA can issue a certificate valid for days
// from now: 1 to 36500 days, and not past the CA certificate's own end.
func (ca *CA) CheckDays(days int, now time.Time) error {
	if err := checkDays("cert days", days); err != nil {
		return err
	}
	if now.AddDate(0, 0, days).After(ca.Cert.NotAfter) {
		return fmt.Errorf("cert days %d: the certificate would outlive the CA certificate, which expires on %s; give fewer days or a newer CA",
			days, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	return nil
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (certPEM, keyPEM []byte, err error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	return signWith(rand.Reader, tmpl, parent, key, signer)
}

// signWith signs a certificate whose serial number is set; a nil random
// makes the signature deterministic.
func signWith(random io.Reader, tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (certPEM, keyPEM []byte, err error) {
	der, err := x509.CreateCertificate(random, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, nil, fmt.Errorf("signing %q: %w", tmpl.Subject, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// CheckValidityDays reports whether days is a validity that a certificate
// may be issued for: 1 to 36500. Errors name field.
func CheckValidityDays(field string, days int) error { return checkDays(field, days) }

func checkDays(field string, days int) error {
	if days < 1 || days > maxDays {
		return fmt.Errorf("%s %d: must be from 1 to %d", field, days, maxDays)
	}
	return nil
}

// SAN is a subject alternative name a user adds: a DNS name or an IP
// address.
type SAN struct {
	DNS string
	IP  net.IP
}

var dnsName = regexp.MustCompile(`^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

// ParseSAN reads a DNS name or an IP address.
func ParseSAN(s string) (SAN, error) {
	if ip := net.ParseIP(s); ip != nil {
		return SAN{IP: ip}, nil
	}
	// A name whose last label is all digits would read as a mistyped IP
	// address (RFC 3696, section 2).
	last := s[strings.LastIndex(s, ".")+1:]
	if len(s) > 253 || !dnsName.MatchString(s) || strings.Trim(last, "0123456789") == "" {
		return SAN{}, fmt.Errorf("%q: must be a DNS name (labels of letters, digits and '-', the last not all digits) or an IP address", s)
	}
	return SAN{DNS: strings.ToLower(s)}, nil
}

var clientName = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)

// CheckName reports whether name can be a client's principal: a short name
// that an ACL can name and a certificate subject can hold unescaped.
func CheckName(name string) error {
	if !clientName.MatchString(name) {
		return fmt.Errorf("%q: must start with a lower-case letter and hold only lower-case letters, digits, '.', '_' and '-', at most 64", name)
	}
	return nil
}

// Bundle joins a key and its certificate chain into one PEM file, key
// first, as Kafka's PEM key store reads it (ssl.keystore.location with
// ssl.keystore.type=PEM) and Go's tls.X509KeyPair reads either half of.
func Bundle(keyPEM []byte, chain ...[]byte) []byte {
	return bytes.Join(append([][]byte{keyPEM}, chain...), nil)
}
