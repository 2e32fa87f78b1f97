// The cluster CA, client identities and the node certificates that disks
// carry: pki issues them, this file hands them to Dagger.

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
)

// Ca returns a new cluster CA: ca.crt and ca.key.
//
// It makes a new cluster CA: ca.crt, its certificate, and ca.key, its
// private key (PKCS#8 PEM). Run it once per cluster and keep ca.key safe:
// disks and client need it to issue certificates, and no image holds it.
// "ca -o ./ca" writes both.
//
// Never cached: every call makes a new key, and a kept result would hand
// the same CA to every cluster described alike.
// +cache="never"
func (m *KafkaBootc) Ca(
	// Validity of the CA certificate, in days. Every node and client
	// certificate must expire before it does.
	// +default=3650
	days int,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	cert, key, err := pki.NewCA("kafka-bootc CA of cluster "+c.Name, days, time.Now())
	if err != nil {
		return nil, err
	}
	return m.withFiles(dag.Directory(), []nodes.File{
		{Path: "ca.crt", Content: cert, Mode: 0o644},
		{Path: "ca.key", Content: key, Mode: 0o600, Private: true},
	}), nil
}

// Client returns a client identity signed by the cluster CA.
//
// It issues a client identity signed by the cluster CA, as a directory
// to use at once: client.key (PKCS#8 PEM) and client.crt, ca.crt,
// client.properties for Kafka's tools (--command-config), and kcat.sh,
// which runs kcat with them. The name is the client's Kafka principal
// (User:<name>), which ACLs name; the admin user's is a super user.
//
// Never cached: every call makes a new key.
// +cache="never"
func (m *KafkaBootc) Client(
	ctx context.Context,
	// The client's name, its principal: lower-case letters, digits, '.',
	// '_' and '-'.
	name string,
	// The cluster CA's certificate, ca.crt as the ca function writes it; or
	// during a CA rotation the bundle of old and new CA, which the client
	// then trusts, and of which the one whose key is given signs.
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key.
	caKey *dagger.Secret,
	// Validity of the client certificate, in days.
	// +default=365
	days int,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	if !c.TLS {
		return nil, errors.New("client: the cluster is built with security: plaintext, whose listeners take no certificates")
	}
	if err := nodes.CheckClientName("client name", name); err != nil {
		return nil, err
	}
	ca, err := loadCA(ctx, caCert, caKey)
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue(nodes.ClientIdentity(name, days), time.Now())
	if err != nil {
		return nil, err
	}
	return m.withFiles(dag.Directory(), c.ClientFiles(name, cert, key, ca.TrustPEM)), nil
}

// issuer makes node certificates with the cluster CA, for disks.
type issuer struct {
	c     *nodes.Cluster
	ca    *pki.CA
	days  int
	extra map[string][]pki.SAN
	// rotate asks for new keys; otherwise each node's key and certificate
	// are derived from the CA key, its identity and the day (see
	// pki.CA.IssueDerived), so that an unchanged disk is built once a day.
	rotate bool
}

// newIssuer checks the CA arguments against the security mode, before
// anything is built: tls mode needs a CA that may sign now, plaintext
// mode takes none. It returns nil in plaintext mode.
func newIssuer(ctx context.Context, c *nodes.Cluster, caCert *dagger.File, caKey *dagger.Secret, days int, extraNames []string, rotate bool) (*issuer, error) {
	if err := checkCAArgs(c.TLS, caCert != nil, caKey != nil, len(extraNames) > 0 || rotate); err != nil || !c.TLS {
		return nil, err
	}
	extra, err := c.ParseExtraNames(extraNames)
	if err != nil {
		return nil, err
	}
	ca, err := loadCA(ctx, caCert, caKey)
	if err != nil {
		return nil, err
	}
	// Bad days fail here rather than after the first disk.
	if err := ca.CheckDays(days, time.Now()); err != nil {
		return nil, err
	}
	return &issuer{c: c, ca: ca, days: days, extra: extra, rotate: rotate}, nil
}

// node issues a node's key and certificate: the key store file (key and
// certificate) and the key alone.
func (is *issuer) node(n nodes.Node) (nodePEM, keyPEM []byte, err error) {
	id := is.c.NodeIdentity(n, is.extra[n.Name], is.days)
	issue := is.ca.IssueDerived
	if is.rotate {
		issue = is.ca.Issue
	}
	certPEM, keyPEM, err := issue(id, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return pki.Bundle(keyPEM, certPEM), keyPEM, nil
}

// loadCA reads and checks the CA certificate and key.
func loadCA(ctx context.Context, caCert *dagger.File, caKey *dagger.Secret) (*pki.CA, error) {
	cert, err := caCert.Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca cert: %w", err)
	}
	key, err := caKey.Plaintext(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	return pki.LoadCA([]byte(cert), []byte(key), time.Now())
}

// checkCAArgs checks the CA arguments of disks and disk against the
// security mode: tls disks need the CA, plaintext ones take nothing of it
// (certOptions: --extra-name or --rotate given).
func checkCAArgs(tls, caCert, caKey, certOptions bool) error {
	switch {
	case !tls && (caCert || caKey || certOptions):
		return errors.New("ca cert: given for a cluster built with security: plaintext, whose nodes use no certificates; leave out --ca-cert, --ca-key, --extra-name and --rotate")
	case tls && (!caCert || !caKey):
		return errors.New("ca cert: tls disks need the cluster CA to sign each node's certificate: give --ca-cert ./ca/ca.crt --ca-key file:./ca/ca.key (make them once with the ca function), or build the cluster with security: plaintext")
	}
	return nil
}
