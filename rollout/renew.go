package rollout

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
)

// Transport reaches the nodes for a renewal or a trust rollout: commands,
// commands that read a file's content from standard input (how a key
// travels: never on a command line), and the nodes' own listeners, where
// their certificates are read.
type Transport interface {
	health.Runner
	health.Dialer
	RunInput(ctx context.Context, host string, argv []string, stdin []byte) ([]byte, error)
}

// renewedSlack is how much sooner than a certificate issued now a node's
// certificate may end and still count as renewed by an earlier run: a
// rerun on the same day skips the nodes that run renewed.
const renewedSlack = 24 * time.Hour

// Renew gives every node a new key and certificate from ca, valid for
// days, one node at a time in the rollout's order and with its gates: it
// issues the node a certificate with the names of the one it presents now,
// installs key and certificate atomically (the old pair stays on the node
// for one step back), restarts the node's Kafka and node-exporter units,
// and waits until the node presents the new certificate and the whole
// cluster is healthy. At the first failure it puts that node's previous
// pair back, restarts its units, and stops. A node whose certificate is
// already signed by ca and ends no sooner than a new one would, less a
// day, is skipped, so a rerun resumes. The keys travel only as the
// content of the files, over SSH, and appear in no output.
func Renew(ctx context.Context, t Transport, c *nodes.Cluster, ns []health.Node, ca *pki.CA, days int, o Options) (string, error) {
	o = o.withDefaults()
	if !c.TLS {
		return "", errors.New("renew certificates: the cluster is built with security plaintext, whose nodes have no certificates")
	}
	start := o.Now()
	if err := ca.CheckDays(days, start); err != nil {
		return "", err
	}
	rep := health.Check(ctx, t, c, ns)
	rep.ReadDetails(ctx, t, c)
	table := newReport(column{"NODE", 20}, column{"EXPIRES", 12}, column{"NEW EXPIRY", 12})
	var blockers []string
	var changes []change
	for _, r := range order(rep) {
		ch := change{node: r.Node, cols: []string{r.Name, expires(r.Cert), "-"}}
		if err := renewable(ctx, t, c, r, ca); err != nil {
			blockers = append(blockers, fmt.Sprintf("%s: %s", r.Name, health.OneLine(err)))
			ch.skip = "cannot be renewed"
		} else if pki.Verify(r.Cert, []*x509.Certificate{ca.Cert}, start) == nil &&
			!r.Cert.NotAfter.Before(start.AddDate(0, 0, days).Add(-renewedSlack)) {
			ch.skip = "renewed already"
		}
		cols := ch.cols
		installed := false
		ch.do = func(ctx context.Context) error {
			id := c.NodeIdentity(r.Node.Node, names(r.Cert), days)
			certPEM, keyPEM, err := ca.Issue(id, o.Now())
			if err != nil {
				return err
			}
			cert, err := pki.ParseCertificate(certPEM)
			if err != nil {
				return err
			}
			// The report's row shows the new end once the node has it.
			cols[2] = cert.NotAfter.UTC().Format(time.DateOnly)
			fmt.Fprintf(o.Log, "%s: installing a new certificate, valid until %s\n", r.Name, cols[2])
			if _, err := t.RunInput(ctx, r.Host, nodes.AsRoot(nodes.InstallTLS(nodes.NodePEMFile)), pki.Bundle(keyPEM, certPEM)); err != nil {
				return fmt.Errorf("installing the new certificate: %w", err)
			}
			installed = true
			if err := o.restart(ctx, t, c, ns, r.Node); err != nil {
				return err
			}
			if err := o.Wait(ctx, "the new certificate", func(ctx context.Context) error {
				got, err := health.ReadCertificate(ctx, t, c, r.Node)
				if err != nil {
					return err
				}
				if !got.Equal(cert) {
					return fmt.Errorf("Kafka presents the certificate that expires on %s", got.NotAfter.UTC().Format(time.DateOnly))
				}
				return nil
			}); err != nil {
				return err
			}
			return o.gate(ctx, t, c, ns, r.Node)
		}
		ch.undo = func(ctx context.Context) (string, error) {
			if !installed {
				return "", nil
			}
			cols[2] = "-"
			return o.undoInstall(ctx, t, c, ns, r.Node, nodes.NodePEMFile, "its previous certificate")
		}
		changes = append(changes, ch)
	}
	if o.DryRun {
		return dryRun(table, changes, "would renew", blockers, "a renewal", rep), nil
	}
	if err := refuse(blockers, rep); err != nil {
		return "", err
	}
	return apply(ctx, "renewal", "renewed", table, changes, o.Log)
}

// renewable reports why a node's certificate cannot be renewed from ca:
// it cannot be read, it is not the node's, or the node would not trust
// what ca issues, since its trust store does not hold ca.
func renewable(ctx context.Context, t Transport, c *nodes.Cluster, r health.Row, ca *pki.CA) error {
	if err := readable(r); err != nil {
		return err
	}
	if r.Cert.Subject.CommonName != r.Name {
		return fmt.Errorf("presents a certificate for %q, not for itself", r.Cert.Subject.CommonName)
	}
	trust, err := trustStore(ctx, t, r.Node)
	if err != nil {
		return err
	}
	if !pki.Trusts(trust, ca.Cert) {
		return fmt.Errorf("does not trust the CA %q: roll a bundle of the old and the new CA out with trust first", ca.Cert.Subject)
	}
	return nil
}

// readable reports why a node's certificate was not read.
func readable(r health.Row) error {
	switch {
	case r.Err != nil:
		return r.Err
	case r.CertErr != nil:
		return fmt.Errorf("its certificate cannot be read: %w", r.CertErr)
	case r.Cert == nil:
		return fmt.Errorf("its certificate cannot be read: its Kafka unit is %s", r.Unit)
	}
	return nil
}

// Trust rolls a new trust store out to every node, one node at a time in
// the rollout's order and with its gates: bundlePEM, the CA certificates
// that the nodes' listeners and clients accept. It is the first and the
// last step of a CA rotation: first a bundle of the old and the new CA,
// then, once every node is renewed from the new CA, the new CA alone. It
// refuses a bundle that a node's current certificate does not verify
// against, which would cut that node off. At the first failure it puts
// that node's previous trust store back, restarts its units, and stops; a
// node that trusts exactly the bundle already is skipped.
func Trust(ctx context.Context, t Transport, c *nodes.Cluster, ns []health.Node, bundlePEM []byte, o Options) (string, error) {
	o = o.withDefaults()
	if !c.TLS {
		return "", errors.New("trust: the cluster is built with security plaintext, whose nodes have no trust store")
	}
	bundle, err := pki.ParseTrustBundle(bundlePEM)
	if err != nil {
		return "", err
	}
	now := o.Now()
	rep := health.Check(ctx, t, c, ns)
	rep.ReadDetails(ctx, t, c)
	table := newReport(column{"NODE", 20}, column{"TRUSTS", 12}, column{"NEW", 12})
	var blockers []string
	var changes []change
	for _, r := range order(rep) {
		ch := change{node: r.Node, cols: []string{r.Name, "-", cas(len(bundle))}}
		trust, err := trustStore(ctx, t, r.Node)
		if err == nil {
			ch.cols[1] = cas(len(trust))
			err = readable(r)
		}
		if err == nil {
			if verr := pki.Verify(r.Cert, bundle, now); verr != nil {
				err = fmt.Errorf("its certificate, issued by %q, would not be trusted by the bundle: renew it from a CA of the bundle first (%v)", r.Cert.Issuer, verr)
			}
		}
		switch {
		case err != nil:
			blockers = append(blockers, fmt.Sprintf("%s: %s", r.Name, health.OneLine(err)))
			ch.skip = "cannot take the bundle"
		case sameCAs(trust, bundle):
			ch.skip = "trusts it already"
		}
		installed := false
		ch.do = func(ctx context.Context) error {
			fmt.Fprintf(o.Log, "%s: installing the trust bundle (%s)\n", r.Name, cas(len(bundle)))
			if _, err := t.RunInput(ctx, r.Host, nodes.AsRoot(nodes.InstallTLS(nodes.CACertFile)), bundlePEM); err != nil {
				return fmt.Errorf("installing the trust bundle: %w", err)
			}
			installed = true
			if err := o.restart(ctx, t, c, ns, r.Node); err != nil {
				return err
			}
			return o.gate(ctx, t, c, ns, r.Node)
		}
		ch.undo = func(ctx context.Context) (string, error) {
			if !installed {
				return "", nil
			}
			return o.undoInstall(ctx, t, c, ns, r.Node, nodes.CACertFile, "its previous trust store")
		}
		changes = append(changes, ch)
	}
	if o.DryRun {
		return dryRun(table, changes, "would trust it", blockers, "a trust rollout", rep), nil
	}
	if err := refuse(blockers, rep); err != nil {
		return "", err
	}
	return apply(ctx, "trust rollout", "trusts it", table, changes, o.Log)
}

// restart restarts the units of a node that read its TLS files, once the
// cluster can spare the node (see restartGate), each unit's restart
// bounded by the timeout.
func (o Options) restart(ctx context.Context, t Transport, c *nodes.Cluster, ns []health.Node, n health.Node) error {
	if err := o.restartGate(ctx, t, c, ns, n); err != nil {
		return err
	}
	return o.restartUnits(ctx, t, n)
}

func (o Options) restartUnits(ctx context.Context, t Transport, n health.Node) error {
	for _, argv := range nodes.Restarts(n.Role) {
		if _, err := o.step(ctx, t, n.Host, argv, o.Timeout); err != nil {
			return fmt.Errorf("restarting: %w", err)
		}
	}
	return nil
}

// undoInstall puts back the file that an install replaced, and restarts
// the node's units so that they read it, unless another node is away.
func (o Options) undoInstall(ctx context.Context, t Transport, c *nodes.Cluster, ns []health.Node, n health.Node, file, what string) (string, error) {
	fmt.Fprintf(o.Log, "%s: putting %s back\n", n.Name, what)
	if _, err := o.step(ctx, t, n.Host, nodes.RestoreTLS(file), o.Timeout); err != nil {
		return "restoring " + what, err
	}
	if err := othersAway(ctx, t, c, ns, n); err != nil {
		return "restored " + what + ", not restarted", err
	}
	if err := o.restartUnits(ctx, t, n); err != nil {
		return "restarting with " + what, err
	}
	return "restored " + what + " and restarted its units", nil
}

// trustStore reads the CA certificates that a node trusts.
func trustStore(ctx context.Context, t Transport, n health.Node) ([]*x509.Certificate, error) {
	out, err := t.Run(ctx, n.Host, nodes.AsRoot(nodes.ActionShowTrust))
	if err != nil {
		return nil, fmt.Errorf("reading its trust store (a node image built before renew-certificates existed lacks the steps in its sudoers drop-in: roll a new build out first): %w", err)
	}
	certs, err := pki.ParseTrustBundle(out)
	if err != nil {
		return nil, fmt.Errorf("its trust store: %w", err)
	}
	return certs, nil
}

// sameCAs reports whether two trust stores hold the same certificates.
func sameCAs(a, b []*x509.Certificate) bool {
	contains := func(set []*x509.Certificate, c *x509.Certificate) bool {
		return slices.ContainsFunc(set, c.Equal)
	}
	for _, c := range a {
		if !contains(b, c) {
			return false
		}
	}
	for _, c := range b {
		if !contains(a, c) {
			return false
		}
	}
	return true
}

// names are a certificate's subject alternative names, which a renewed
// certificate keeps.
func names(cert *x509.Certificate) []pki.SAN {
	var out []pki.SAN
	for _, d := range cert.DNSNames {
		out = append(out, pki.SAN{DNS: d})
	}
	for _, ip := range cert.IPAddresses {
		out = append(out, pki.SAN{IP: ip})
	}
	return out
}

func expires(cert *x509.Certificate) string {
	if cert == nil {
		return "-"
	}
	return cert.NotAfter.UTC().Format(time.DateOnly)
}

func cas(n int) string {
	if n == 1 {
		return "1 CA"
	}
	return fmt.Sprintf("%d CAs", n)
}

// dryRun is the plan of a rolling operation: what it would do to each
// node, then what would stop it from starting now.
func dryRun(table *report, changes []change, would string, blockers []string, what string, rep health.Report) string {
	for _, ch := range changes {
		table.line(ch.cols, cmp.Or(ch.skip, would))
	}
	out := table.String() + refusal(what, rep)
	if len(blockers) > 0 {
		out += what + " would refuse to start now:\n  " + strings.Join(blockers, "\n  ") + "\n"
	}
	return out
}

// refuse says why a rolling operation must not start: a node it cannot
// change, or a cluster that is not healthy.
func refuse(blockers []string, rep health.Report) error {
	if len(blockers) > 0 {
		return fmt.Errorf("refusing to start, nothing changed:\n  %s", strings.Join(blockers, "\n  "))
	}
	if !rep.Healthy() {
		return fmt.Errorf("refusing to start: the cluster is unhealthy\n%s", rep.Table())
	}
	return nil
}
