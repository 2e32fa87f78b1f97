package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"dagger/kafka-bootc/nodes"
)

// Dialer opens TCP connections as a node sees the network: a Runner that is
// also a Dialer lets Check read each node's certificate from the node's own
// Kafka listener (package remote's SSH does so through sshd).
type Dialer interface {
	Dial(ctx context.Context, host, addr string) (net.Conn, error)
}

// DefaultCertMinDays is how many days a node certificate must still be
// valid for health to call it healthy: a month to renew it in, as
// Strimzi's default renewal window (30 days) gives.
const DefaultCertMinDays = 30

// errGotCertificate ends a handshake once the node's certificate is read:
// the listener requires a client certificate, which the reader has none of.
var errGotCertificate = errors.New("certificate read")

// ReadCertificate reads the certificate that the node's Kafka listener
// presents, on localhost:<role port> as the node sees it. It reads what
// Kafka serves, which after a renewal is the new certificate only once
// Kafka has restarted. It checks nothing: the certificate is read, not
// trusted.
func ReadCertificate(ctx context.Context, d Dialer, c *nodes.Cluster, n Node) (*x509.Certificate, error) {
	addr := net.JoinHostPort("localhost", strconv.Itoa(c.Roles[n.Role].Port))
	conn, err := d.Dial(ctx, n.Host, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var got *x509.Certificate
	tc := tls.Client(conn, &tls.Config{
		// Read, not trusted: Verify and the caller decide what it is worth.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				got = cs.PeerCertificates[0]
			}
			return errGotCertificate
		},
	})
	err = tc.HandshakeContext(ctx)
	if got != nil {
		return got, nil
	}
	return nil, fmt.Errorf("%s: reading the certificate of Kafka's listener %s: %w", n.Host, addr, err)
}

// Expiry is the node certificate's end, as the table shows it: whole days
// left, "-" when it was not read.
func (row Row) Expiry(now time.Time) string {
	if row.Cert == nil {
		return "-"
	}
	return strconv.Itoa(DaysLeft(row.Cert, now)) + "d"
}

// DaysLeft is how many whole days a certificate is still valid at now;
// negative once it has expired.
func DaysLeft(cert *x509.Certificate, now time.Time) int {
	left := cert.NotAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	if left < 0 {
		days--
	}
	return days
}

// CheckCertificates adds a problem for each node whose certificate expires
// within minDays of now, or, in tls mode, could not be read from a node
// whose Kafka unit is active. Check leaves this out, so that a rollout or a
// renewal is not refused for what it is there to fix; health adds it.
func (r *Report) CheckCertificates(c *nodes.Cluster, minDays int, now time.Time) {
	if !c.TLS {
		return
	}
	for _, row := range r.Rows {
		switch {
		case row.Err != nil || row.Unit != "active":
		case row.CertErr != nil:
			r.Problems = append(r.Problems, fmt.Sprintf("%s: its certificate cannot be read: %s", row.Name, OneLine(row.CertErr)))
		case row.Cert == nil:
		case !now.Before(row.Cert.NotAfter):
			r.Problems = append(r.Problems, fmt.Sprintf("%s: its certificate expired on %s: renew it with renew-certificates",
				row.Name, row.Cert.NotAfter.UTC().Format(time.DateOnly)))
		case DaysLeft(row.Cert, now) < minDays:
			r.Problems = append(r.Problems, fmt.Sprintf("%s: its certificate expires on %s, in %d days (less than %d): renew it with renew-certificates",
				row.Name, row.Cert.NotAfter.UTC().Format(time.DateOnly), DaysLeft(row.Cert, now), minDays))
		}
	}
}
