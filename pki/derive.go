package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// deriveSalt names the derivation: a new one gives every node new keys.
const deriveSalt = "kafka-bootc node key v1"

// IssueDerived is Issue made a pure function of its inputs: the CA's key,
// the identity and the day the certificate starts. The node's key is
// derived from the CA's private key with HKDF-SHA256 (RFC 5869), its
// serial number too, and the signature is deterministic (RFC 6979 for an
// ECDSA CA; RSA PKCS #1 v1.5 and Ed25519 are deterministic already). The
// certificate is valid from the start of day (UTC) for id.Days days.
//
// So an unchanged cluster gets byte-identical keys and certificates, and
// a disk built again the same day from the same inputs is the same disk.
// This gives nobody anything new: whoever holds the CA's key can already
// issue any node a certificate that every node trusts, and without it the
// derived keys are unpredictable (HKDF is a pseudorandom function of the
// CA's key). A change of name, validity or day gives another key.
func (ca *CA) IssueDerived(id Identity, day time.Time) (certPEM, keyPEM []byte, err error) {
	start := day.UTC().Truncate(24 * time.Hour)
	if err := ca.CheckDays(id.Days, start); err != nil {
		return nil, nil, err
	}
	secret, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca key: %w", err)
	}
	info, err := json.Marshal(struct {
		Subject  string
		DNSNames []string
		IPs      []string
		Server   bool
		Days     int
		Start    string
	}{id.Subject.String(), id.DNSNames, ipStrings(id), id.Server, id.Days, start.Format(time.DateOnly)})
	if err != nil {
		return nil, nil, err
	}
	key, err := deriveKey(secret, string(info))
	if err != nil {
		return nil, nil, err
	}
	serial, err := hkdf.Key(sha256.New, secret, []byte(deriveSalt), "serial "+string(info), 16)
	if err != nil {
		return nil, nil, err
	}
	serial[0] &= 0x7f
	serial[0] |= 0x40 // positive, and never zero
	tmpl := template(id, start)
	tmpl.SerialNumber = new(big.Int).SetBytes(serial)
	// A nil source of randomness makes the CA's signature deterministic.
	return signWith(nil, tmpl, ca.Cert, key, ca.Key)
}

// deriveKey derives a P-256 private key: the first HKDF output, with a
// counter, that is a valid scalar (below the group's order, not zero).
func deriveKey(secret []byte, info string) (*ecdsa.PrivateKey, error) {
	for counter := 0; counter < 16; counter++ {
		d, err := hkdf.Key(sha256.New, secret, []byte(deriveSalt), fmt.Sprintf("key %d %s", counter, info), 32)
		if err != nil {
			return nil, err
		}
		if key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d); err == nil {
			return key, nil
		}
	}
	return nil, errors.New("deriving a node key: no valid scalar")
}

func ipStrings(id Identity) []string {
	out := make([]string, len(id.IPs))
	for i, ip := range id.IPs {
		out[i] = ip.String()
	}
	return out
}
