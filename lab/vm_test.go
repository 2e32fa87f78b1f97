package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"dagger/kafka-bootc/internal/bootdisktest"
	"dagger/kafka-bootc/internal/sshdtest"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/remote"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// These tests boot stand-in disks (internal/bootdisktest): busybox, an
// sshd, DHCP and a line of text on 9092, no Kafka and no bootc. They run
// the lab's own plumbing for real: the bridge, dnsmasq, qemu, SSH, the
// names, the forwards, and a boot that fails.

var standIn struct {
	once sync.Once
	dir  string
	key  []byte
	err  error
}

// standInDisks makes, once, the disks of a 1+1 cluster in the domain
// lab.test, plus a controller disk whose kernel looks for a root device
// that does not exist (broken/).
func standInDisks(t *testing.T, c *nodes.Cluster) (string, []byte) {
	t.Helper()
	standIn.once.Do(func() {
		dir, err := os.MkdirTemp("", "kafka-bootc-lab-disks")
		if err != nil {
			standIn.err = err
			return
		}
		pub, priv := sshdtest.NewKey(t)
		authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
		for _, n := range c.Nodes {
			bootdisktest.Disk(t, n.Name, n.Hostname, authorized, filepath.Join(dir, n.Name, DiskPath))
		}
		n := c.Nodes[len(c.Nodes)-1]
		bootdisktest.Disk(t, n.Name, n.Hostname, authorized, filepath.Join(dir, "broken", n.Name, DiskPath),
			"KCMDLINE=console=ttyS0 root=/dev/vdz")
		for _, b := range c.Nodes[:len(c.Nodes)-1] {
			os.MkdirAll(filepath.Join(dir, "broken", b.Name), 0o755)
			os.Symlink(filepath.Join(dir, b.Name, "qcow2"), filepath.Join(dir, "broken", b.Name, "qcow2"))
		}
		standIn.dir, standIn.key = dir, priv
	})
	if standIn.err != nil {
		t.Fatal(standIn.err)
	}
	return standIn.dir, standIn.key
}

func standInCluster(t *testing.T) *nodes.Cluster { return cluster(t, 1, 1, "lab.test") }

// labSSH reaches the plan's VMs, checking their host keys: the ones
// make-disk.sh wrote beside each disk, for the node's hostname.
func labSSH(t *testing.T, p *Plan, key []byte) *remote.SSH {
	var known []byte
	for _, vm := range p.VMs {
		pub, err := os.ReadFile(vm.Disk + ".hostkey.pub")
		if err != nil {
			t.Fatal(err)
		}
		known = append(known, vm.Node.Hostname+" "+string(pub)...)
	}
	known, err := p.KnownHosts(known)
	if err != nil {
		t.Fatal(err)
	}
	s, err := remote.New(remote.Config{User: "core", PrivateKey: key, KnownHosts: known, Log: io.Discard, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func standInPlan(t *testing.T, c *nodes.Cluster, disks, bridge string) *Plan {
	p, err := NewPlan(c, Options{Disks: disks, RunDir: t.TempDir(), MemoryMiB: 256, CPUs: 1, Accel: AccelTCG,
		Bridge: fmt.Sprintf("kbt%d%s", os.Getpid()%100000, bridge), Subnet: "192.168.214.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSmokeBootsStandInsAndSkipsWhatNeedsKafka: every VM boots, answers
// over SSH as its own hostname, reaches the other under its qualified
// name; the steps that need bootc and Kafka report skipped, and the
// table says so. Then what up gives the user: SSH and the 9092 listener
// through forwarded ports.
func TestSmokeBootsStandInsAndSkipsWhatNeedsKafka(t *testing.T) {
	bootdisktest.Require(t)
	c := standInCluster(t)
	dir, key := standInDisks(t, c)
	p := standInPlan(t, c, dir, "a")
	run := labSSH(t, p, key)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, rep := Smoke{Plan: p, Cluster: c, Run: run, BootTimeout: 3 * time.Minute, HealthTimeout: time.Minute, Poll: time.Second, Log: testLog{t}}.Start(ctx)
	if l != nil {
		defer l.Stop()
	}
	t.Log("\n" + rep.Table())
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	want := map[string]string{"boot": Passed, "ssh": Passed, "network": Passed, "disks": Passed,
		"health": Skipped, "topic": Skipped, "produce and consume": Skipped, "other CA refused": Skipped, "broker reboot keeps data": Skipped, "rollout": Skipped}
	if len(rep.Steps) != len(want) {
		t.Errorf("%d steps, want %d", len(rep.Steps), len(want))
	}
	for _, s := range rep.Steps {
		if want[s.Name] != s.Result {
			t.Errorf("step %s: %s, want %s", s.Name, s.Result, want[s.Name])
		}
	}
	table := rep.Table()
	for _, w := range []string{"stand-ins: no node is a bootc system", "every node reaches every other by its hostname (2 pairs)", "smoke: passed"} {
		if !strings.Contains(table, w) {
			t.Errorf("the table lacks %q", w)
		}
	}

	// up: each node's SSH, and a listener, through the lab's forwards.
	vm := p.VMs[0]
	sshFwd := forward(t, net.JoinHostPort(vm.IP.String(), "22"))
	pub, _ := os.ReadFile(vm.Disk + ".hostkey.pub")
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	user, err := remote.New(remote.Config{User: "core", PrivateKey: key, KnownHosts: []byte(knownhosts.Line([]string{sshFwd}, hostKey) + "\n"), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	out, err := user.Run(ctx, sshFwd, []string{"cat", "/etc/hostname"})
	if err != nil || strings.TrimSpace(string(out)) != vm.Node.Hostname {
		t.Errorf("SSH through the forward: %q %v", out, err)
	}
	kafkaFwd := forward(t, net.JoinHostPort(vm.IP.String(), "9092"))
	conn, err := net.Dial("tcp", kafkaFwd)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(conn).ReadString('\n'); strings.TrimSpace(line) != "kafka-standin "+vm.Node.Hostname {
		t.Errorf("9092 through the forward: %q %v", line, err)
	}

	l.Stop()
	for _, v := range p.VMs {
		if _, err := net.InterfaceByName(v.Tap); err == nil {
			t.Errorf("%s is left after Stop", v.Tap)
		}
	}
	if _, err := os.Stat(vm.Console); err != nil {
		t.Errorf("the console log is gone after Stop: %v", err)
	}
}

func forward(t *testing.T, target string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go Forward(l, target, dialer, testLog{t})
	return l.Addr().String()
}

// TestABootThatFailsShowsItsConsole: a disk that never reaches SSH fails
// the ssh step with the node's name and the last lines of its serial
// console, which say why.
func TestABootThatFailsShowsItsConsole(t *testing.T) {
	bootdisktest.Require(t)
	c := standInCluster(t)
	dir, key := standInDisks(t, c)
	p := standInPlan(t, c, filepath.Join(dir, "broken"), "b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, rep := Smoke{Plan: p, Cluster: c, Run: labSSH(t, p, key), BootTimeout: 45 * time.Second, Poll: time.Second, Log: testLog{t}}.Start(ctx)
	if l != nil {
		defer l.Stop()
	}
	t.Log("\n" + rep.Table())
	var be *BootError
	if !errors.As(rep.Err, &be) || be.Node != "kafka-controller-1" {
		t.Fatalf("error %v, want kafka-controller-1's boot error", rep.Err)
	}
	if !strings.Contains(be.Console, "cannot mount /dev/vdz") || !strings.Contains(rep.Err.Error(), "no answer over SSH") {
		t.Errorf("the error does not show why:\n%v", rep.Err)
	}
	last := rep.Steps[len(rep.Steps)-1]
	if last.Name != "ssh" || last.Result != Failed || !strings.Contains(rep.Table(), "smoke: failed: ssh: kafka-controller-1") {
		t.Errorf("the table does not end with the failed step:\n%s", rep.Table())
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if standIn.dir != "" {
		os.RemoveAll(standIn.dir)
	}
	os.Exit(code)
}

// TestOutboundRoutesTheVMsBeyondTheLab: with Outbound, a VM reaches a
// server in another network namespace that has no route back to the lab's
// network, so only the lab's masquerading can carry the answer; Stop
// takes the rules and the forwarding back.
func TestOutboundRoutesTheVMsBeyondTheLab(t *testing.T) {
	bootdisktest.Require(t)
	for _, tool := range []string{"iptables", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed", tool)
		}
	}
	c := standInCluster(t)
	dir, key := standInDisks(t, c)
	// The upstream: a namespace behind a veth pair, serving one file.
	ns := fmt.Sprintf("kbo%d", os.Getpid()%100000)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh("ip", "link", "add", ns+"h", "type", "veth", "peer", "name", ns+"n")
	t.Cleanup(func() { exec.Command("ip", "link", "del", ns+"h").Run() })
	sh("ip", "link", "set", ns+"n", "netns", ns)
	sh("ip", "addr", "add", "198.18.77.1/30", "dev", ns+"h")
	sh("ip", "link", "set", ns+"h", "up")
	sh("ip", "netns", "exec", ns, "ip", "addr", "add", "198.18.77.2/30", "dev", ns+"n")
	sh("ip", "netns", "exec", ns, "ip", "link", "set", ns+"n", "up")
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte("upstream\n"), 0o644)
	httpd := exec.Command("ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", "7777", "-h", www)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpd.Process.Kill(); httpd.Wait() })
	forwardBefore, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")

	p, err := NewPlan(c, Options{Disks: dir, RunDir: t.TempDir(), MemoryMiB: 256, CPUs: 1, Accel: AccelTCG, Outbound: true,
		Bridge: fmt.Sprintf("kbt%dc", os.Getpid()%100000), Subnet: "192.168.216.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := Start(ctx, p, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	run := labSSH(t, p, key)
	if _, err := l.WaitSSH(ctx, run, 3*time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := run.RunInput(ctx, p.VMs[0].IP.String(), []string{"nc", "-w", "10", "198.18.77.2", "7777"}, []byte("GET / HTTP/1.0\r\n\r\n"))
	if err != nil || !strings.HasSuffix(string(out), "\r\n\r\nupstream\n") {
		t.Errorf("a VM fetching from beyond the lab: %q %v", out, err)
	}
	l.Stop()
	rules, _ := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").CombinedOutput()
	if strings.Contains(string(rules), p.Prefix.String()) {
		t.Errorf("the masquerade rule is left after Stop:\n%s", rules)
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(after) != string(forwardBefore) {
		t.Errorf("ip_forward is %q after Stop, %q before", after, forwardBefore)
	}
}
