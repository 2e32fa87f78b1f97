package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/pki"
)

// broker is a TLS server for name that tells each client its name and
// the client certificate's subject: a stand-in for a broker's listener.
func broker(t *testing.T, ca *pki.CA, name string) string {
	t.Helper()
	cert := issue(t, ca, name)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.TrustPEM)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				c.Write([]byte(name + " " + tc.ConnectionState().PeerCertificates[0].Subject.CommonName + "\n"))
			}()
		}
	}()
	return l.Addr().String()
}

// newCA is a CA made the way the ca function makes the cluster's.
func newCA(t *testing.T) *pki.CA {
	certPEM, keyPEM, err := pki.NewCA("lab test CA", 2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue is a certificate for name, for a server and a client alike.
func issue(t *testing.T, ca *pki.CA, name string) tls.Certificate {
	certPEM, keyPEM, err := ca.Issue(pki.Identity{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}, Server: true, Days: 1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func dialer(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// TestOnePortReachesEveryBrokerByItsName: a client that asks for a
// broker's name (as a Kafka client does for the advertised name) gets
// that broker, with mutual TLS end to end: the broker sees the client's
// own certificate. A client that names no broker, or another, is refused.
func TestOnePortReachesEveryBrokerByItsName(t *testing.T) {
	ca := newCA(t)
	routes := map[string]string{
		"kafka-broker-1.lab": broker(t, ca, "kafka-broker-1.lab"),
		"kafka-broker-2.lab": broker(t, ca, "kafka-broker-2.lab"),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var log bytes.Buffer
	go RouteSNI(l, routes, dialer, &log)
	client := issue(t, ca, "kafka-admin")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.TrustPEM)
	ask := func(name string) (string, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(),
			&tls.Config{ServerName: name, RootCAs: pool, Certificates: []tls.Certificate{client}, InsecureSkipVerify: name == ""})
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line), err
	}
	for _, name := range []string{"kafka-broker-2.lab", "kafka-broker-1.lab", "KAFKA-BROKER-2.lab"} {
		got, err := ask(name)
		if want := strings.ToLower(name) + " kafka-admin"; err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", name, got, err, want)
		}
	}
	if got, err := ask("kafka-broker-9.lab"); err == nil {
		t.Errorf("an unknown name reached %q", got)
	}
	if got, err := ask(""); err == nil {
		t.Errorf("a client naming no server reached %q", got)
	}
	if !strings.Contains(log.String(), `no broker is named "kafka-broker-9.lab"`) || !strings.Contains(log.String(), "names no server") {
		t.Errorf("the refusals are not logged:\n%s", log.String())
	}
}

// TestForwardJoinsBothWays: a plain forward carries a conversation
// both ways, as SSH through the lab's ports needs.
func TestForwardJoinsBothWays(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("echo " + line))
			}()
		}
	}()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go Forward(l, echo.Addr().String(), dialer, &bytes.Buffer{})
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); line != "echo hello\n" {
		t.Errorf("through the forward: %q %v", line, err)
	}
}
