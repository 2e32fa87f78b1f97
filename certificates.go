// Certificates of the running cluster: renewal and trust rollouts.

package main

import (
	"context"
	"fmt"

	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/pki"
	"dagger/kafka-bootc/rollout"
)

// RenewCertificates gives every node a new certificate, node by node.
//
// It gives every node a new key and certificate from the
// cluster CA, one node at a time, and returns what it did.
//
// It goes in rollout's order, with its gates: for each node it issues a
// certificate with the names of the one the node presents now, installs
// key and certificate atomically under /etc/kafka-bootc/tls (the old pair
// stays beside them, one step back), restarts the node's Kafka and
// node-exporter units, and waits until the node presents the new
// certificate and the whole cluster is healthy. At the first failure it
// puts that node's old pair back, restarts it, stops, and says so. A node
// whose certificate is already signed by the CA and valid about as long as
// a new one would be is skipped, so a rerun resumes. The keys travel over
// SSH only as the files' content, and appear in no output. During a CA
// rotation, run trust with the bundle of old and new CA first.
//
// Never cached: it changes running machines.
// +cache="never"
func (r *Running) RenewCertificates(
	ctx context.Context,
	// The cluster CA's certificate, ca.crt as the ca function writes it; or
	// during a CA rotation the bundle of old and new CA, of which the one
	// whose key is given signs.
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key. It signs
	// the node certificates here, and goes nowhere else.
	caKey *dagger.Secret,
	// Validity of each new node certificate, in days.
	// +default=365
	days int,
	// Print the plan (order, each node's current expiry and what would be
	// done) and change nothing.
	// +optional
	dryRun bool,
	// How long to wait, in seconds, for a node to present its new
	// certificate, for its Kafka unit, and for the cluster to be healthy
	// again, each.
	// +default=900
	timeout int,
) (string, error) {
	o, err := rollingOptions(timeout, dryRun)
	if err != nil {
		return "", err
	}
	if err := pki.CheckValidityDays("days", days); err != nil {
		return "", err
	}
	ca, err := loadCA(ctx, caCert, caKey)
	if err != nil {
		return "", err
	}
	c, targets, ssh, err := r.connect(ctx, false)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	return rollout.Renew(ctx, ssh, c, targets, ca, days, o)
}

// Trust rolls a new trust store (CA bundle) out to every node, node by node.
//
// It rolls a new trust store, a bundle of CA certificates, out to every
// node, one node at a time, and returns what it did.
//
// It is the first and the last step of a CA rotation: trust the bundle of
// old and new CA, renew-certificates from the new CA, then trust the new CA
// alone. It goes in rollout's order, with its gates: for each node it
// installs the bundle as /etc/kafka-bootc/tls/ca.crt (the old one stays
// beside it), restarts the node's Kafka and node-exporter units, and waits
// until the whole cluster is healthy. It refuses a bundle that some node's
// current certificate does not verify against. At the first failure it
// puts that node's old trust store back, restarts it, stops, and says so;
// a node that trusts exactly the bundle already is skipped.
//
// Never cached: it changes running machines.
// +cache="never"
func (r *Running) Trust(
	ctx context.Context,
	// The CA certificates to trust, as one PEM file, for example
	// cat ca/ca.crt new-ca/ca.crt > bundle.crt.
	caCert *dagger.File,
	// Print the plan and change nothing.
	// +optional
	dryRun bool,
	// How long to wait, in seconds, for a node's Kafka unit and for the
	// cluster to be healthy again, each.
	// +default=900
	timeout int,
) (string, error) {
	o, err := rollingOptions(timeout, dryRun)
	if err != nil {
		return "", err
	}
	bundle, err := caCert.Contents(ctx)
	if err != nil {
		return "", fmt.Errorf("ca cert: %w", err)
	}
	if _, err := pki.ParseTrustBundle([]byte(bundle)); err != nil {
		return "", err
	}
	c, targets, ssh, err := r.connect(ctx, false)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	return rollout.Trust(ctx, ssh, c, targets, []byte(bundle), o)
}
