package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"dagger/kafka-bootc/internal/fakenodes"
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
	if err == nil || !strings.Contains(err.Error(), "waiting for kafka-broker-1 to come back from its reboot: gave up after 50ms: still the same boot") {
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

// labNodes are fake bootc nodes at the lab's addresses: health's probes
// and the rolling steps as internal/fakenodes answers them, and an SSH
// server at every name; nothing else listens.
type labNodes struct{ *fakenodes.Cluster }

func (labNodes) Dial(ctx context.Context, host, addr string) (net.Conn, error) {
	if !strings.HasSuffix(addr, ":22") {
		return nil, fmt.Errorf("%s: connecting to %s on the node: connection refused", host, addr)
	}
	return (&fakeNodes{banner: "SSH-2.0-OpenSSH_9.9"}).Dial(ctx, host, addr)
}

// fakeKafka keeps what is produced and says what it was asked.
type fakeKafka struct {
	topics  map[string][]string
	calls   []string
	refused bool
}

func (k *fakeKafka) CreateTopic(_ context.Context, topic string, replicas int) error {
	k.calls = append(k.calls, fmt.Sprintf("create %d", replicas))
	k.topics[topic] = nil
	return nil
}

func (k *fakeKafka) Produce(_ context.Context, topic string, records []string) error {
	k.calls = append(k.calls, fmt.Sprintf("produce %d", len(records)))
	k.topics[topic] = append(k.topics[topic], records...)
	return nil
}

func (k *fakeKafka) Consume(_ context.Context, topic string, n int) ([]string, error) {
	k.calls = append(k.calls, fmt.Sprintf("consume %d", n))
	return k.topics[topic], nil
}

func (k *fakeKafka) OtherCARefused(context.Context) error {
	k.calls = append(k.calls, "other CA")
	if !k.refused {
		return errors.New("a client whose certificate another CA signed was let in")
	}
	return nil
}

const (
	oldDigest = "sha256:736b359467c9437c1ac915acaae952aad854e07eb4a16a94999a48af08c83c34"
	newDigest = "sha256:16dc2b6256b4ff0d2ec18d2dbfb06d117904010c8cf9732cdb022818cf7a7566"
)

// bootcLab is the default cluster's plan with fake bootc nodes on the
// old image, every tag on the new one, and a boot that starts no VM.
func bootcLab(t *testing.T) (Smoke, *fakenodes.Cluster, *fakeKafka) {
	c := cluster(t, 3, 3, "")
	p, err := NewPlan(c, Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakenodes.Cluster{Nodes: map[string]*fakenodes.Node{}, Tags: map[string]string{}, Leader: 1002,
		VersionOf: map[string]string{oldDigest: "4.4.0", newDigest: "4.4.0"}, Metadata: "4.4-IV0"}
	if c.Dynamic {
		f.KRaftVersion = "1" // the default cluster's quorum, formed dynamic
	}
	upgrade := map[string]string{}
	for _, vm := range p.VMs {
		f.Nodes[vm.IP.String()] = &fakenodes.Node{Name: vm.Node.Name, Booted: oldDigest, Unit: "active", Version: "4.4.0"}
		f.Tags[vm.Node.Name] = newDigest
		upgrade[vm.Node.Name] = "quay.io/me/" + vm.Node.Name + "@" + newDigest
	}
	k := &fakeKafka{topics: map[string][]string{}, refused: true}
	boot := func(context.Context, *Plan, io.Writer) (*Lab, error) {
		l := &Lab{Plan: p, qemu: map[string]*proc{}}
		for _, vm := range p.VMs {
			l.qemu[vm.Node.Name] = &proc{name: vm.Node.Name, done: make(chan struct{})}
		}
		return l, nil
	}
	return Smoke{Plan: p, Cluster: c, Run: labNodes{f}, Kafka: k, Records: 5, Upgrade: upgrade,
		BootTimeout: time.Minute, HealthTimeout: time.Minute, Poll: time.Millisecond, Log: io.Discard, boot: boot}, f, k
}

// TestSmokeOnBootcNodesRunsEveryStep: on bootc nodes every step runs, in
// order: health, the topic with 3 replicas, records written and read
// back, another CA refused, a broker rebooted and the records read again,
// then the rollout moves every node to its new image and the records are
// still there.
func TestSmokeOnBootcNodesRunsEveryStep(t *testing.T) {
	s, f, k := bootcLab(t)
	_, rep := s.Start(context.Background())
	if rep.Err != nil {
		t.Fatalf("%v\n%s", rep.Err, rep.Table())
	}
	var names []string
	for _, st := range rep.Steps {
		names = append(names, st.Name+" "+st.Result)
	}
	want := "boot ok, ssh ok, network ok, disks ok, health ok, topic ok, produce and consume ok, other CA refused ok, broker reboot keeps data ok, rollout ok"
	if got := strings.Join(names, ", "); got != want {
		t.Errorf("steps:\n%s\nwant:\n%s", got, want)
	}
	if got := strings.Join(k.calls, ", "); got != "create 3, produce 5, consume 5, other CA, consume 5, consume 5" {
		t.Errorf("Kafka calls: %s", got)
	}
	if !strings.Contains(rep.Table(), "6 of 6 nodes moved to their new images; 5 records written and read back") {
		t.Errorf("the rollout's line:\n%s", rep.Table())
	}
	if f.Steps[0] != "kafka-broker-1: reboot" {
		t.Errorf("the first change is not the broker's reboot: %v", f.Steps)
	}
	for host, n := range f.Nodes {
		if n.Booted != newDigest {
			t.Errorf("%s (%s) boots %s after the rollout", n.Name, host, n.Booted)
		}
	}
}

// TestSmokeStopsAtTheFailingStep: a client of another CA let in fails
// that step; nothing after it runs, and the table ends with the failure.
func TestSmokeStopsAtTheFailingStep(t *testing.T) {
	s, f, k := bootcLab(t)
	k.refused = false
	_, rep := s.Start(context.Background())
	last := rep.Steps[len(rep.Steps)-1]
	if last.Name != "other CA refused" || last.Result != Failed || !strings.Contains(rep.Table(), "smoke: failed: other CA refused: a client whose certificate another CA signed was let in") {
		t.Errorf("table:\n%s", rep.Table())
	}
	if len(f.Steps) != 0 {
		t.Errorf("nodes changed after the failure: %v", f.Steps)
	}
}
