package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNodes answers the smoke steps' commands for a plan's VMs: which
// are bootc systems, their boot ids (a reboot makes a new one after a
// while), and what a connection through a node to another's SSH reads.
type fakeNodes struct {
	mu       sync.Mutex
	bootc    map[string]bool
	boots    map[string]int
	down     map[string]int // answers to fail after a reboot
	banner   string
	rebooted []string
}

func (f *fakeNodes) Run(ctx context.Context, host string, argv []string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := strings.Join(argv, " ")
	switch {
	case cmd == "test -e /run/ostree-booted":
		if f.bootc[host] {
			return nil, nil
		}
		return nil, errors.New("exit status 1")
	case cmd == "sudo -n /usr/bin/systemctl reboot":
		f.rebooted = append(f.rebooted, host)
		f.boots[host]++
		f.down[host] = 3
		return nil, errors.New("connection lost")
	case cmd == "cat /proc/sys/kernel/random/boot_id":
		if f.down[host] > 0 {
			f.down[host]--
			return nil, errors.New("connection refused")
		}
		return fmt.Appendf(nil, "boot-%d\n", f.boots[host]), nil
	}
	return nil, fmt.Errorf("unexpected command %q", cmd)
}

func (f *fakeNodes) Dial(ctx context.Context, host, addr string) (net.Conn, error) {
	a, b := net.Pipe()
	go func() {
		b.Write([]byte(f.banner + "\r\n"))
		b.Close()
	}()
	return a, nil
}

func fakePlan(t *testing.T) *Plan {
	c := cluster(t, 1, 1, "")
	p, err := NewPlan(c, Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRebootWaitsForANewBoot: a node counts as back only when it answers
// with another boot id, however long its connection is refused first.
func TestRebootWaitsForANewBoot(t *testing.T) {
	p := fakePlan(t)
	f := &fakeNodes{boots: map[string]int{}, down: map[string]int{}}
	vm := p.VMs[0]
	if err := Reboot(context.Background(), f, vm, time.Minute, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(f.rebooted) != 1 || f.down[vm.IP.String()] != 0 {
		t.Errorf("rebooted %v, answers still to fail %d", f.rebooted, f.down[vm.IP.String()])
	}
	err := Reboot(context.Background(), &neverBack{f}, vm, 50*time.Millisecond, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not back from its reboot within 50ms") {
		t.Errorf("a node that never comes back: %v", err)
	}
}

// neverBack is a node whose reboot never happens: the same boot id.
type neverBack struct{ *fakeNodes }

func (n *neverBack) Run(ctx context.Context, host string, argv []string) ([]byte, error) {
	if strings.Join(argv, " ") == "cat /proc/sys/kernel/random/boot_id" {
		return []byte("boot-0\n"), nil
	}
	return nil, errors.New("connection lost")
}

// TestBootcSystemsAreAllOrNone: a mix of bootc and other disks is an
// error naming both, not a quiet skip of the Kafka steps.
func TestBootcSystemsAreAllOrNone(t *testing.T) {
	p := fakePlan(t)
	b, c := p.VMs[0].IP.String(), p.VMs[1].IP.String()
	for _, tc := range []struct {
		bootc map[string]bool
		want  bool
		err   string
	}{
		{map[string]bool{b: true, c: true}, true, ""},
		{map[string]bool{}, false, ""},
		{map[string]bool{b: true}, false, "kafka-broker-1 booted bootc deployments, kafka-controller-1 did not"},
	} {
		got, err := BootcSystems(context.Background(), &fakeNodes{bootc: tc.bootc}, p)
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: %v %v, want %v %q", tc.bootc, got, err, tc.want, tc.err)
		}
	}
}

// TestReachableNeedsAnSSHServerAtTheName: what answers at another node's
// name must be an SSH server.
func TestReachableNeedsAnSSHServerAtTheName(t *testing.T) {
	p := fakePlan(t)
	if got, err := Reachable(context.Background(), &fakeNodes{banner: "SSH-2.0-OpenSSH_9.9"}, p); err != nil || !strings.Contains(got, "(2 pairs)") {
		t.Errorf("SSH answers: %q %v", got, err)
	}
	_, err := Reachable(context.Background(), &fakeNodes{banner: "HTTP/1.1 400 Bad Request"}, p)
	if err == nil || !strings.Contains(err.Error(), "kafka-broker-1 cannot reach kafka-controller-1 by its name") || !strings.Contains(err.Error(), "not an SSH server") {
		t.Errorf("something else answers: %v", err)
	}
}
