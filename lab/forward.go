package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Dialer opens the lab's side of a forwarded connection.
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

// Forward accepts connections on l and joins each to target, until l is
// closed. Problems with one connection go to log; the others go on.
func Forward(l net.Listener, target string, dial Dialer, log io.Writer) {
	serve(l, log, func(c net.Conn) (string, []byte, error) { return target, nil, nil }, dial)
}

// RouteSNI accepts TLS connections on l and joins each to the route of
// the server name its client asks for (SNI), bytes untouched: the TLS
// session, its client certificate among them, is between the client and
// the broker. A Kafka client asks for the name the broker advertises, so
// one port reaches every broker. A name without a route is refused.
func RouteSNI(l net.Listener, routes map[string]string, dial Dialer, log io.Writer) {
	serve(l, log, func(c net.Conn) (string, []byte, error) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		name, peeked, err := peekServerName(c)
		c.SetReadDeadline(time.Time{})
		if err != nil {
			return "", nil, err
		}
		target, ok := routes[strings.ToLower(name)]
		if !ok {
			return "", nil, fmt.Errorf("no broker is named %q", name)
		}
		return target, peeked, nil
	}, dial)
}

func serve(l net.Listener, log io.Writer, route func(net.Conn) (string, []byte, error), dial Dialer) {
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(log, "lab: %s: %v\n", l.Addr(), err)
			}
			return
		}
		go func() {
			defer c.Close()
			target, peeked, err := route(c)
			if err != nil {
				fmt.Fprintf(log, "lab: %s from %s: %v\n", l.Addr(), c.RemoteAddr(), err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			up, err := dial(ctx, target)
			cancel()
			if err != nil {
				fmt.Fprintf(log, "lab: %s to %s: %v\n", l.Addr(), target, err)
				return
			}
			defer up.Close()
			if _, err := up.Write(peeked); err != nil {
				return
			}
			join(c, up)
		}()
	}
}

// join copies both ways until either side ends, then closes both.
func join(a, b net.Conn) {
	var once sync.Once
	done := make(chan struct{})
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		once.Do(func() { close(done) })
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	a.Close()
	b.Close()
}

// peekServerName reads a TLS ClientHello from c and returns the server
// name it asks for and the bytes read, to replay to the server. It uses
// crypto/tls's own parser: a handshake on a connection that cannot write,
// stopped once the hello is read.
func peekServerName(c net.Conn) (string, []byte, error) {
	var read bytes.Buffer
	var name string
	var seen bool
	err := tls.Server(readOnly{r: io.TeeReader(c, &read)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name, seen = h.ServerName, true
			return nil, errPeeked
		},
	}).Handshake()
	if !seen {
		return "", nil, fmt.Errorf("not a TLS client hello: %v", err)
	}
	if name == "" {
		return "", nil, errors.New("the TLS client names no server (SNI): connect by the broker's name, not its address")
	}
	return name, read.Bytes(), nil
}

var errPeeked = errors.New("client hello read")

// readOnly is a connection that reads from r and writes nowhere.
type readOnly struct{ r io.Reader }

func (c readOnly) Read(p []byte) (int, error)     { return c.r.Read(p) }
func (readOnly) Write([]byte) (int, error)        { return 0, io.ErrClosedPipe }
func (readOnly) Close() error                     { return nil }
func (readOnly) LocalAddr() net.Addr              { return nil }
func (readOnly) RemoteAddr() net.Addr             { return nil }
func (readOnly) SetDeadline(time.Time) error      { return nil }
func (readOnly) SetReadDeadline(time.Time) error  { return nil }
func (readOnly) SetWriteDeadline(time.Time) error { return nil }
