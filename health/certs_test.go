package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"dagger/kafka-bootc/internal/tlstest"
	"dagger/kafka-bootc/pki"
)

// tlsFake is the fake cluster whose nodes' Kafka listeners present a
// certificate, and require one from the client, as Kafka's do in tls mode.
type tlsFake struct {
	fake
	certs map[string]tls.Certificate
	// dialed records the addresses asked for, by host.
	dialed map[string]string
	mu     *sync.Mutex
}

func (f tlsFake) Dial(ctx context.Context, host, addr string) (net.Conn, error) {
	cert, ok := f.certs[host]
	if !ok || f.fake[host].down {
		return nil, fmt.Errorf("%s: connecting to %s on the node: connection refused", host, addr)
	}
	f.mu.Lock()
	f.dialed[host] = addr
	f.mu.Unlock()
	return tlstest.DialListener(ctx, cert)
}

// nodeCerts issues every node of the fake a certificate valid for days.
func nodeCerts(t *testing.T, f fake, days map[string]int) tlsFake {
	t.Helper()
	caPEM, caKey, err := pki.NewCA("test CA", 3650, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caPEM, caKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tf := tlsFake{fake: f, certs: map[string]tls.Certificate{}, dialed: map[string]string{}, mu: &sync.Mutex{}}
	for host := range f {
		d := days[host]
		if d == 0 {
			d = 365
		}
		certPEM, keyPEM, err := ca.Issue(pki.Identity{Subject: pkix.Name{CommonName: host}, DNSNames: []string{host}, Server: true, Days: d}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if tf.certs[host], err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
	}
	return tf
}

// TestHealthShowsEachNodesCertificateExpiry: the CERT column holds the days
// left of the certificate each node's own Kafka listener presents.
func TestHealthShowsEachNodesCertificateExpiry(t *testing.T) {
	c, ns, f := cluster(t)
	tf := nodeCerts(t, f, map[string]int{"kafka-broker-2": 200})
	rep := Check(context.Background(), tf, c, ns)
	rep.ReadDetails(context.Background(), tf, c)
	rep.CheckCertificates(c, DefaultCertMinDays, rep.At)
	if !rep.Healthy() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	checkRows(t, rep.Table(), map[string]string{
		"kafka-broker-1":     "broker 1 736b359467c9 - yes active 3.8.0 observer, lag 0 0 364d",
		"kafka-broker-2":     "broker 2 736b359467c9 - yes active 3.8.0 observer, lag 0 0 199d",
		"kafka-controller-1": "controller 1001 736b359467c9 - yes active 3.8.0 leader, lag 0 - 364d",
	})
	if tf.dialed["kafka-broker-1"] != "localhost:9092" || tf.dialed["kafka-controller-1"] != "localhost:9093" {
		t.Errorf("listeners asked for: %v", tf.dialed)
	}
}

// TestACertificateThatExpiresSoonIsUnhealthy: 10 days left is below the
// default threshold of 30; health names the node and the date. The
// threshold is the caller's.
func TestACertificateThatExpiresSoonIsUnhealthy(t *testing.T) {
	c, ns, f := cluster(t)
	tf := nodeCerts(t, f, map[string]int{"kafka-controller-2": 10})
	rep := Check(context.Background(), tf, c, ns)
	rep.ReadDetails(context.Background(), tf, c)
	if !rep.Healthy() {
		t.Fatalf("Check alone judged the certificate: %v", rep.Problems)
	}
	rep.CheckCertificates(c, DefaultCertMinDays, rep.At)
	end := tf.certs["kafka-controller-2"].Leaf.NotAfter.UTC().Format(time.DateOnly)
	want := "kafka-controller-2: its certificate expires on " + end + ", in 9 days (less than 30): renew it with renew-certificates"
	if len(rep.Problems) != 1 || rep.Problems[0] != want {
		t.Errorf("problems %q, want %q", rep.Problems, want)
	}
	if !strings.Contains(rep.Table(), "unhealthy:\n  "+want) {
		t.Errorf("table:\n%s", rep.Table())
	}
	rep = Check(context.Background(), tf, c, ns)
	rep.ReadDetails(context.Background(), tf, c)
	rep.CheckCertificates(c, 7, rep.At)
	if !rep.Healthy() {
		t.Errorf("with a threshold of 7 days: %v", rep.Problems)
	}
	rep.CheckCertificates(c, 7, rep.At.AddDate(0, 0, 11))
	if len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0], "kafka-controller-2: its certificate expired on "+end) {
		t.Errorf("expired: %v", rep.Problems)
	}
}

// TestACertificateThatCannotBeReadIsUnhealthy: a node whose Kafka unit is
// active but whose listener gives no certificate.
func TestACertificateThatCannotBeReadIsUnhealthy(t *testing.T) {
	c, ns, f := cluster(t)
	tf := nodeCerts(t, f, nil)
	delete(tf.certs, "kafka-broker-3")
	rep := Check(context.Background(), tf, c, ns)
	rep.ReadDetails(context.Background(), tf, c)
	rep.CheckCertificates(c, DefaultCertMinDays, rep.At)
	if len(rep.Problems) != 1 || !strings.HasPrefix(rep.Problems[0], "kafka-broker-3: its certificate cannot be read: kafka-broker-3: connecting to localhost:9092 on the node") {
		t.Errorf("problems %q", rep.Problems)
	}
}

func TestDaysLeftCountsWholeDays(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		end  time.Time
		want int
	}{
		{now.Add(24 * time.Hour), 1},
		{now.Add(47 * time.Hour), 1},
		{now.Add(time.Hour), 0},
		{now.Add(-time.Hour), -1},
	} {
		if got := DaysLeft(&x509.Certificate{NotAfter: tc.end}, now); got != tc.want {
			t.Errorf("ending at %s: %d days left, want %d", tc.end, got, tc.want)
		}
	}
}
