// Package tlstest stands in for a node's Kafka listener in tests: a TLS
// server on a real socket that presents a certificate and asks for a
// client's, as Kafka's listeners do in tls mode.
package tlstest

import (
	"context"
	"crypto/tls"
	"net"
)

// DialListener starts a listener for one connection that presents cert
// and requires a client certificate, and returns the client's end. A real
// socket, not a pipe: TLS peers write at once, and a pipe has no buffer.
func DialListener(ctx context.Context, cert tls.Certificate) (net.Conn, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		defer l.Close()
		conn, err := l.Accept()
		if err != nil {
			return
		}
		s := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
		s.HandshakeContext(ctx)
		s.Close()
	}()
	return net.Dial("tcp", l.Addr().String())
}
