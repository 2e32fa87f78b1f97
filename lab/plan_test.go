package lab

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"dagger/kafka-bootc/nodes"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// cluster plans a cluster of brokers and controllers with the defaults.
func cluster(t *testing.T, brokers, controllers int, domain string) *nodes.Cluster {
	t.Helper()
	s := nodes.Default()
	s.Brokers, s.Controllers, s.Domain = brokers, controllers, domain
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// disks writes an empty disk file for every node, as disks lays them out.
func disks(t *testing.T, c *nodes.Cluster) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range c.Nodes {
		p := filepath.Join(dir, n.Name, DiskPath)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	return dir
}

// TestThePlanGivesEveryNodeItsOwnAddressMACPortAndSize: one address, MAC,
// tap and SSH port per node, the same on every run, each node the size of
// its role unless the lab's override says otherwise.
func TestThePlanGivesEveryNodeItsOwnAddressMACPortAndSize(t *testing.T) {
	c := cluster(t, 3, 3, "kafka.example.com")
	o := Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG}
	p, err := NewPlan(c, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.VMs) != 6 || p.Gateway.String() != "192.168.213.1" || p.KafkaPort != 9092 || !p.TLS {
		t.Fatalf("plan: %d VMs, gateway %s, port %d, tls %v", len(p.VMs), p.Gateway, p.KafkaPort, p.TLS)
	}
	seen := map[string]bool{}
	for i, vm := range p.VMs {
		for _, v := range []string{vm.IP.String(), vm.MAC, vm.Tap, vm.Overlay, vm.Console} {
			if seen[v] {
				t.Errorf("%s: %s is another node's too", vm.Node.Name, v)
			}
			seen[v] = true
		}
		if want := 2201 + i; vm.SSHPort != want {
			t.Errorf("%s: ssh port %d, want %d", vm.Node.Name, vm.SSHPort, want)
		}
		rs := c.Roles[vm.Node.Role]
		if vm.MemoryMiB != rs.MemoryMiB || vm.CPUs != rs.CPUs {
			t.Errorf("%s: %d MiB %d CPUs, want its role's %d MiB %d CPUs", vm.Node.Name, vm.MemoryMiB, vm.CPUs, rs.MemoryMiB, rs.CPUs)
		}
		if got := vm.Names(); len(got) != 2 || got[0] != vm.Node.Name+".kafka.example.com" || got[1] != vm.Node.Name {
			t.Errorf("%s: names %v", vm.Node.Name, got)
		}
	}
	again, _ := NewPlan(c, o)
	for i := range p.VMs {
		if again.VMs[i].IP != p.VMs[i].IP || again.VMs[i].MAC != p.VMs[i].MAC {
			t.Errorf("%s: another address on another run", p.VMs[i].Node.Name)
		}
	}

	o.MemoryMiB, o.CPUs = 768, 1
	small, err := NewPlan(c, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range small.VMs {
		if vm.MemoryMiB != 768 || vm.CPUs != 1 {
			t.Errorf("%s: %d MiB %d CPUs, want the override's 768 MiB 1 CPU", vm.Node.Name, vm.MemoryMiB, vm.CPUs)
		}
	}
	if len(small.Warnings) != 6 || !strings.Contains(small.Warnings[0], "heap") {
		t.Errorf("768 MiB is below every node's heap and OS: warnings %q", small.Warnings)
	}
}

// TestBadOptionsNameTheirFieldAndRule: each problem is one error that
// names what to fix; a missing disk names the nodes that lack one.
func TestBadOptionsNameTheirFieldAndRule(t *testing.T) {
	c := cluster(t, 1, 1, "")
	dir := disks(t, c)
	os.Remove(filepath.Join(dir, "kafka-controller-1", DiskPath))
	good := Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG}
	for _, tc := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Disks = dir }, "no <node>/qcow2/disk.qcow2 for kafka-controller-1"},
		{func(o *Options) { o.Disks = "" }, "disks: required"},
		{func(o *Options) { o.MemoryMiB = 128 }, "memory 128 MiB: must be at least 256 MiB"},
		{func(o *Options) { o.CPUs = 65 }, "cpus 65: must be from 1 to 64"},
		{func(o *Options) { o.Accel = "hvf" }, `accel "hvf": must be auto, kvm or tcg`},
		{func(o *Options) { o.Subnet = "10.0.0.0/30" }, `subnet "10.0.0.0/30": must be an IPv4 network from /16 to /28`},
		{func(o *Options) { o.Subnet = "fd00::/64" }, "must be an IPv4 network"},
		{func(o *Options) { o.Bridge = "a-very-long-bridge" }, "network interface name"},
		{func(o *Options) { o.SSHPortBase = 80 }, "ssh port base 80"},
	} {
		o := good
		tc.change(&o)
		_, err := NewPlan(c, o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", o, err, tc.want)
		}
	}
	big := cluster(t, 3, 3, "")
	if _, err := NewPlan(big, Options{Disks: disks(t, big), RunDir: t.TempDir(), Accel: AccelTCG, Subnet: "10.0.0.0/28"}); err == nil || !strings.Contains(err.Error(), "too small for 6 nodes") {
		t.Errorf("a /28 holds 14 hosts, fewer than 10 + 6: error %v", err)
	}
}

// TestAccelFallsBackToTCGAndSaysWhy: auto takes KVM where it can be
// used and says why it did not otherwise; kvm asked for where it cannot be
// used is an error, not a slow surprise.
func TestAccelFallsBackToTCGAndSaysWhy(t *testing.T) {
	no := func() error { return errors.New("open /dev/kvm: no such file or directory") }
	yes := func() error { return nil }
	if a, why, err := chooseAccel(AccelAuto, no); a != AccelTCG || !strings.Contains(why, "no such file") || err != nil {
		t.Errorf("auto without KVM: %s (%s) %v", a, why, err)
	}
	if a, _, err := chooseAccel(AccelAuto, yes); a != AccelKVM || err != nil {
		t.Errorf("auto with KVM: %s %v", a, err)
	}
	if _, _, err := chooseAccel(AccelKVM, no); err == nil || !strings.Contains(err.Error(), "use tcg or auto") {
		t.Errorf("kvm without KVM: %v", err)
	}
	if a, _, _ := chooseAccel(AccelTCG, yes); a != AccelTCG {
		t.Errorf("tcg asked for: %s", a)
	}
}

// TestDnsmasqTakesTheLabsConfiguration: dnsmasq's own syntax check
// accepts the arguments, and they serve each node its address by MAC and
// every name it answers to.
func TestDnsmasqTakesTheLabsConfiguration(t *testing.T) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("skipped: dnsmasq (Debian's dnsmasq-base) is not installed")
	}
	c := cluster(t, 3, 3, "kafka.example.com")
	p, err := NewPlan(c, Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	args := p.DnsmasqArgs()
	outbound := *p
	outbound.Outbound = true
	for _, a := range [][]string{args, outbound.DnsmasqArgs()} {
		out, err := exec.Command(bin, append([]string{"--test"}, a[1:]...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "syntax check OK") {
			t.Fatalf("dnsmasq --test: %v\n%s", err, out)
		}
	}
	closed, open := strings.Join(args, " "), strings.Join(outbound.DnsmasqArgs(), " ")
	if !strings.Contains(closed, "--no-resolv --local=/#/ --dhcp-option=option:router ") || strings.Contains(open, "--no-resolv") ||
		!strings.Contains(open, "--dhcp-option=option:router,192.168.213.1 --local=/kafka.example.com/") {
		t.Errorf("a closed lab must forward nothing and give no router, an outbound one both:\n%s\n%s", closed, open)
	}
	all := strings.Join(args, "\n")
	for _, want := range []string{
		"--dhcp-host=52:54:00:d5:00:01,192.168.213.11,kafka-broker-1",
		"--host-record=kafka-controller-3.kafka.example.com,kafka-controller-3,192.168.213.16",
		"--domain=kafka.example.com",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("dnsmasq arguments lack %s:\n%s", want, all)
		}
	}
}

// TestWhatTheUserAddsToReachTheLab: the addresses file that running
// reads, and the hosts line that sends Kafka clients to the lab.
func TestWhatTheUserAddsToReachTheLab(t *testing.T) {
	c := cluster(t, 2, 1, "")
	p, err := NewPlan(c, Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Addresses("127.0.0.1"), "kafka-broker-1=127.0.0.1:2201\nkafka-broker-2=127.0.0.1:2202\nkafka-controller-1=127.0.0.1:2203\n"; got != want {
		t.Errorf("addresses:\n%s\nwant:\n%s", got, want)
	}
	if got, want := p.HostsLines("127.0.0.1"), "127.0.0.1 kafka-broker-1 kafka-broker-2\n"; got != want {
		t.Errorf("hosts: %q, want %q", got, want)
	}
}

// TestConsoleLinesLoseTerminalEscapes: GRUB and the kernel write escapes
// and carriage returns; the lines a failure shows are text.
func TestConsoleLinesLoseTerminalEscapes(t *testing.T) {
	in := "\x1b[H\x1b[J\x1b[1;1H  Booting `standin'\r\n\r\nline two\n\nkernel panic\n"
	got := lastLines(in, 2)
	if strings.Join(got, "|") != "line two|kernel panic" {
		t.Errorf("last lines %q", got)
	}
	if got := lastLines(in, 5); got[0] != "  Booting `standin'" {
		t.Errorf("escapes left: %q", got[0])
	}
}

// TestKnownHostsFollowTheNodesToTheirLabAddresses: lines for a node's
// name or hostname become lines for its lab address, with the same key;
// a host that is no node is refused.
func TestKnownHostsFollowTheNodesToTheirLabAddresses(t *testing.T) {
	c := cluster(t, 1, 1, "lab.test")
	p, err := NewPlan(c, Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDJoc6RZAPItv6ubcTOBoBBsHb7uRJT3o1ZVdoHpQ4mH"))
	if err != nil {
		t.Fatal(err)
	}
	in := "# from ssh-keyscan\n" + knownhosts.Line([]string{"kafka-broker-1.lab.test"}, pub) + "\n" + knownhosts.Line([]string{"kafka-controller-1"}, pub) + "\n"
	out, err := p.KnownHosts([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	check, err := knownhostsFrom(t, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range p.VMs {
		if err := check(vm.IP.String()+":22", &net.TCPAddr{}, pub); err != nil {
			t.Errorf("%s at %s: %v", vm.Node.Name, vm.IP, err)
		}
	}
	if _, err := p.KnownHosts([]byte(knownhosts.Line([]string{"bastion"}, pub))); err == nil || !strings.Contains(err.Error(), `"bastion" is not a node`) {
		t.Errorf("a line for another host: %v", err)
	}
}

func knownhostsFrom(t *testing.T, content []byte) (ssh.HostKeyCallback, error) {
	f := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(f, content, 0o600)
	return knownhosts.New(f)
}
