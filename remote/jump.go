package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Hop is an SSH host that connections to the nodes go through.
type Hop struct {
	// User logs in on it; the nodes' user when empty.
	User string
	// Addr is its host:port.
	Addr string
}

// ParseJump reads a jump host as ssh -J takes it: [user@]host[:port].
func ParseJump(s string) (Hop, error) {
	user, host, ok := strings.Cut(s, "@")
	if !ok {
		user, host = "", s
	}
	if (ok && user == "") || host == "" || strings.ContainsAny(s, " /,") {
		return Hop{}, fmt.Errorf("jump %q: must be [USER@]HOST[:PORT], as ssh -J takes it", s)
	}
	addr := host
	if h, port, err := net.SplitHostPort(host); err == nil {
		if h == "" || port == "" {
			return Hop{}, fmt.Errorf("jump %q: must be [USER@]HOST[:PORT], as ssh -J takes it", s)
		}
	} else {
		addr = net.JoinHostPort(strings.Trim(host, "[]"), "22")
	}
	return Hop{User: user, Addr: addr}, nil
}

// dial opens a TCP connection to addr: directly, or from the last jump
// host.
func (s *SSH) dial(ctx context.Context, addr string) (net.Conn, error) {
	if len(s.jumps) == 0 {
		d := net.Dialer{Timeout: s.timeout}
		return d.DialContext(ctx, "tcp", addr)
	}
	s.jumpMu.Lock()
	defer s.jumpMu.Unlock()
	if len(s.hops) == 0 {
		if err := s.connectHops(ctx); err != nil {
			return nil, err
		}
	}
	last := s.hops[len(s.hops)-1]
	conn, err := last.DialContext(ctx, "tcp", addr)
	if err != nil {
		var refused *ssh.OpenChannelError
		if !errors.As(err, &refused) {
			// The way through is gone: the next dial goes through anew.
			s.closeHops()
		}
		return nil, fmt.Errorf("through %s: %w", s.jumps[len(s.jumps)-1].Addr, err)
	}
	return conn, nil
}

// connectHops logs in on each jump host in turn, each reached from the
// one before.
func (s *SSH) connectHops(ctx context.Context) error {
	for i, h := range s.jumps {
		var conn net.Conn
		var err error
		if i == 0 {
			d := net.Dialer{Timeout: s.timeout}
			conn, err = d.DialContext(ctx, "tcp", h.Addr)
		} else {
			conn, err = s.hops[i-1].DialContext(ctx, "tcp", h.Addr)
		}
		if err == nil {
			user := h.User
			if user == "" {
				user = s.cfg.User
			}
			var c *ssh.Client
			if c, err = s.handshake(ctx, conn, h.Addr, user); err == nil {
				s.hops = append(s.hops, c)
				continue
			}
		}
		s.closeHops()
		return fmt.Errorf("jump host %s: %w", h.Addr, err)
	}
	return nil
}

// closeHops closes the jump hosts' connections, nearest the nodes first.
func (s *SSH) closeHops() {
	for i := len(s.hops) - 1; i >= 0; i-- {
		s.hops[i].Close()
	}
	s.hops = nil
}
