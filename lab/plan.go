// Package lab boots a cluster's disks as virtual machines on one machine,
// with qemu, and proves that they work: the lab.
//
// Everything runs in one privileged container (or, in the tests, on the
// host as root): a Linux bridge is the cluster's private network, dnsmasq
// on it gives each VM its address by DHCP and answers for every node's
// hostname, and one qemu per node boots a copy-on-write overlay of its
// disk, never the disk itself. The lab reaches the nodes over the bridge,
// and forwards ports to them for the user: each node's SSH, and the
// brokers' TLS listener, routed by the name the client asks for (SNI).
//
// The plan is pure: what the lab will run, from the cluster and the
// options, checked before anything starts.
package lab

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"dagger/kafka-bootc/nodes"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DiskPath is where a node's disk is under the directory that disks
// writes: its qcow2, which the overlays take as their backing file.
const DiskPath = "qcow2/disk.qcow2"

// Defaults of the options.
const (
	DefaultBridge      = "kblab0"
	DefaultSubnet      = "192.168.213.0/24"
	DefaultSSHPortBase = 2200
	// MinMemoryMiB is the least memory a VM may be given: a kernel and an
	// sshd, no more.
	MinMemoryMiB = 256
)

// Accelerators qemu may use.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Options says how to run the lab.
type Options struct {
	// Disks is the directory that disks wrote: <node>/qcow2/disk.qcow2.
	Disks string
	// RunDir holds the overlays, the console logs and dnsmasq's files.
	RunDir string
	// MemoryMiB and CPUs, when set, size every VM instead of the
	// cluster's settings, since a laptop cannot give every node its
	// production size.
	MemoryMiB int
	CPUs      int
	// Accel is auto (KVM where /dev/kvm can be opened, else TCG), kvm or
	// tcg.
	Accel string
	// Bridge names the cluster network's bridge; its taps are named
	// after it.
	Bridge string
	// Subnet is the cluster network, an IPv4 prefix of /16 to /28.
	Subnet string
	// SSHPortBase + n is where the lab forwards node n's SSH (n from 1,
	// in the cluster's order).
	SSHPortBase int
	// DiskExists says whether a disk is there; nil looks in the file
	// system.
	DiskExists func(path string) bool
	// Outbound routes the VMs' traffic beyond the lab, masqueraded, and
	// forwards their DNS queries for other names: what a rollout needs to
	// reach the registry. Without it, the lab's network is closed.
	Outbound bool
}

// Plan is what the lab runs.
type Plan struct {
	Bridge string
	// Prefix is the cluster network; Gateway the lab's own address on it,
	// where dnsmasq answers DHCP and DNS.
	Prefix  netip.Prefix
	Gateway netip.Addr
	// Domain is the cluster's DNS domain, or empty.
	Domain string
	// Accel is kvm or tcg, and AccelWhy why.
	Accel    string
	AccelWhy string
	RunDir   string
	VMs      []VM
	// KafkaPort is the brokers' listener port, which the lab routes by
	// name; TLS says whether that listener speaks TLS (else it is not
	// routed: a plain TCP client names no host).
	KafkaPort int
	TLS       bool
	// Warnings are what the user should know but that does not stop the
	// lab, such as a VM smaller than its Kafka heap needs.
	Warnings []string
	// Outbound: see Options.
	Outbound bool
}

// VM is one node's virtual machine.
type VM struct {
	Node      nodes.Node
	Disk      string
	Overlay   string
	Console   string
	Tap       string
	MAC       string
	IP        netip.Addr
	MemoryMiB int
	CPUs      int
	// SSHPort is the lab's port that forwards to the node's SSH.
	SSHPort int
}

// NewPlan checks the options against the cluster and the disks, and lays
// the lab out: every problem is an error naming its option or node.
func NewPlan(c *nodes.Cluster, o Options) (*Plan, error) {
	if o.Bridge == "" {
		o.Bridge = DefaultBridge
	}
	if o.Subnet == "" {
		o.Subnet = DefaultSubnet
	}
	if o.SSHPortBase == 0 {
		o.SSHPortBase = DefaultSSHPortBase
	}
	if o.Accel == "" {
		o.Accel = AccelAuto
	}
	if o.DiskExists == nil {
		o.DiskExists = func(p string) bool {
			fi, err := os.Stat(p)
			return err == nil && fi.Mode().IsRegular()
		}
	}
	if o.RunDir == "" {
		return nil, errors.New("run dir: required")
	}
	if o.Disks == "" {
		return nil, errors.New("disks: required, the directory that disks wrote")
	}
	if !validIfName(o.Bridge) || len(o.Bridge)+len("-")+len(strconv.Itoa(len(c.Nodes))) > 15 {
		return nil, fmt.Errorf("bridge %q: must be letters, digits and '-', short enough that %s-%d is a network interface name (15 characters)", o.Bridge, o.Bridge, len(c.Nodes))
	}
	prefix, err := netip.ParsePrefix(o.Subnet)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() < 16 || prefix.Bits() > 28 {
		return nil, fmt.Errorf("subnet %q: must be an IPv4 network from /16 to /28, for example %s", o.Subnet, DefaultSubnet)
	}
	prefix = prefix.Masked()
	if o.MemoryMiB != 0 && o.MemoryMiB < MinMemoryMiB {
		return nil, fmt.Errorf("memory %d MiB: must be at least %d MiB", o.MemoryMiB, MinMemoryMiB)
	}
	if o.CPUs < 0 || o.CPUs > 64 {
		return nil, fmt.Errorf("cpus %d: must be from 1 to 64 (0 keeps the cluster's)", o.CPUs)
	}
	if o.SSHPortBase < 1024 || o.SSHPortBase+len(c.Nodes) > 65535 {
		return nil, fmt.Errorf("ssh port base %d: must be from 1024 to %d", o.SSHPortBase, 65535-len(c.Nodes))
	}
	p := &Plan{Bridge: o.Bridge, Prefix: prefix, Gateway: prefix.Addr().Next(), Domain: c.Domain, RunDir: o.RunDir,
		KafkaPort: c.Roles[nodes.Broker].Port, TLS: c.TLS, Outbound: o.Outbound}
	if p.Accel, p.AccelWhy, err = chooseAccel(o.Accel, kvmUsable); err != nil {
		return nil, err
	}
	var missing []string
	for i, n := range c.Nodes {
		// Node i is 10+i addresses after the gateway: room below for the
		// lab's own, and the same address on every run.
		addr := p.Gateway
		for range 10 + i {
			addr = addr.Next()
		}
		if !prefix.Contains(addr) || addr == lastAddr(prefix) {
			return nil, fmt.Errorf("subnet %s: too small for %d nodes (each needs an address after the gateway's first 10)", prefix, len(c.Nodes))
		}
		rs := c.Roles[n.Role]
		vm := VM{
			Node: n, IP: addr, MemoryMiB: rs.MemoryMiB, CPUs: rs.CPUs,
			Disk:    filepath.Join(o.Disks, n.Name, DiskPath),
			Overlay: filepath.Join(o.RunDir, n.Name+".qcow2"),
			Console: filepath.Join(o.RunDir, n.Name+".console"),
			Tap:     fmt.Sprintf("%s-%d", o.Bridge, i+1),
			MAC:     fmt.Sprintf("52:54:00:%02x:%02x:%02x", prefix.Addr().As4()[2], (i+1)>>8, (i+1)&0xff),
			SSHPort: o.SSHPortBase + i + 1,
		}
		if o.MemoryMiB != 0 {
			vm.MemoryMiB = o.MemoryMiB
			if need := rs.HeapMiB + 512; o.MemoryMiB < need {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s: %d MiB is less than its Kafka heap (%d MiB) and 512 MiB for the OS: Kafka may not start", n.Name, o.MemoryMiB, rs.HeapMiB))
			}
		}
		if o.CPUs != 0 {
			vm.CPUs = o.CPUs
		}
		if !o.DiskExists(vm.Disk) {
			missing = append(missing, n.Name)
		}
		p.VMs = append(p.VMs, vm)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("disks %s: no %s for %s; the lab boots the qcow2 disks that disks writes (keep qcow2 in disk.types)", o.Disks, filepath.Join("<node>", DiskPath), strings.Join(missing, ", "))
	}
	return p, nil
}

// lastAddr is the prefix's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func validIfName(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// chooseAccel picks qemu's accelerator: KVM where it can be used, TCG
// (software emulation, many times slower) where it cannot, and says why.
func chooseAccel(want string, usable func() error) (string, string, error) {
	switch want {
	case AccelKVM:
		if err := usable(); err != nil {
			return "", "", fmt.Errorf("accel kvm: /dev/kvm cannot be used here (%v); use tcg or auto", err)
		}
		return AccelKVM, "asked for", nil
	case AccelTCG:
		return AccelTCG, "asked for", nil
	case AccelAuto:
		if err := usable(); err != nil {
			return AccelTCG, fmt.Sprintf("software emulation: /dev/kvm cannot be used (%v)", err), nil
		}
		return AccelKVM, "/dev/kvm can be used", nil
	}
	return "", "", fmt.Errorf("accel %q: must be %s, %s or %s", want, AccelAuto, AccelKVM, AccelTCG)
}

// kvmUsable opens /dev/kvm for reading and writing, as qemu does.
func kvmUsable() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// Names are the names a node answers to on the lab's network: its
// hostname and, when that is qualified, its short name.
func (vm VM) Names() []string {
	if vm.Node.Hostname != vm.Node.Name {
		return []string{vm.Node.Hostname, vm.Node.Name}
	}
	return []string{vm.Node.Name}
}

// Addresses are NODE=HOST:PORT lines, one per node: where the lab's
// forwarded SSH ports reach the nodes from host.
func (p *Plan) Addresses(host string) string {
	var b strings.Builder
	for _, vm := range p.VMs {
		fmt.Fprintf(&b, "%s=%s\n", vm.Node.Name, netip.AddrPortFrom(netip.MustParseAddr(host), uint16(vm.SSHPort)))
	}
	return b.String()
}

// HostsLines are the /etc/hosts lines that make Kafka clients on the
// user's machine reach the brokers through the lab: every broker's
// advertised name at host, where the lab routes each connection to the
// broker it names.
func (p *Plan) HostsLines(host string) string {
	var names []string
	for _, vm := range p.VMs {
		if vm.Node.Role == nodes.Broker {
			names = append(names, vm.Node.Hostname)
		}
	}
	return host + " " + strings.Join(names, " ") + "\n"
}

// DnsmasqArgs runs dnsmasq on the bridge, in the foreground: each VM's
// address by DHCP, for its MAC only, and DNS for the nodes' names. A
// closed lab forwards nothing, as the disks hold every image the nodes
// run, and gives no router; with Outbound the lab is the VMs' router, and
// dnsmasq forwards other names to the lab's own name servers (the
// cluster's domain and bare names stay local).
func (p *Plan) DnsmasqArgs() []string {
	args := []string{
		"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--interface=" + p.Bridge, "--bind-interfaces", "--except-interface=lo",
		"--no-hosts", "--domain-needed", "--bogus-priv",
		"--dhcp-authoritative", "--dhcp-range=" + p.Prefix.Addr().String() + ",static," + netmask(p.Prefix) + ",infinite",
		"--dhcp-leasefile=" + filepath.Join(p.RunDir, "dnsmasq.leases"),
		"--log-facility=" + filepath.Join(p.RunDir, "dnsmasq.log"), "--log-dhcp",
	}
	if p.Outbound {
		args = append(args, "--dhcp-option=option:router,"+p.Gateway.String())
		if p.Domain != "" {
			args = append(args, "--local=/"+p.Domain+"/")
		}
	} else {
		args = append(args, "--no-resolv", "--local=/#/", "--dhcp-option=option:router")
	}
	if p.Domain != "" {
		args = append(args, "--domain="+p.Domain)
	}
	for _, vm := range p.VMs {
		args = append(args,
			fmt.Sprintf("--dhcp-host=%s,%s,%s", vm.MAC, vm.IP, vm.Node.Name),
			fmt.Sprintf("--host-record=%s,%s", strings.Join(vm.Names(), ","), vm.IP))
	}
	return args
}

// NATRules are the iptables rules that make the lab the VMs' router:
// their traffic forwarded and masqueraded as the lab's own. Each is the
// rule's specification, after "-A" to add it or "-D" to delete it.
func (p *Plan) NATRules() [][]string {
	return [][]string{
		{"-t", "nat", "POSTROUTING", "-s", p.Prefix.String(), "!", "-o", p.Bridge, "-j", "MASQUERADE"},
		{"-t", "filter", "FORWARD", "-i", p.Bridge, "!", "-o", p.Bridge, "-j", "ACCEPT"},
		{"-t", "filter", "FORWARD", "-o", p.Bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
	}
}

func netmask(p netip.Prefix) string {
	m := ^uint32(0) << (32 - p.Bits())
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// QemuArgs boots the VM: its overlay on virtio, its tap on the bridge with
// its MAC, its serial console to a file, firmware BIOS (which bootc's
// x86_64 disks boot, as they boot UEFI).
func (p *Plan) QemuArgs(vm VM) []string {
	cpu := "max"
	if p.Accel == AccelKVM {
		cpu = "host"
	}
	return []string{
		"qemu-system-x86_64", "-name", vm.Node.Name,
		"-machine", "q35", "-accel", p.Accel, "-cpu", cpu,
		"-smp", strconv.Itoa(vm.CPUs), "-m", strconv.Itoa(vm.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
		"-boot", "order=c,menu=off",
		"-drive", "file=" + vm.Overlay + ",if=virtio,format=qcow2,discard=unmap",
		"-netdev", "tap,id=n0,ifname=" + vm.Tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,mac=" + vm.MAC,
		"-device", "virtio-rng-pci",
		"-serial", "file:" + vm.Console,
	}
}

// OverlayArgs makes the VM's overlay: writes go there, never to the disk
// that disks wrote.
func (p *Plan) OverlayArgs(vm VM) []string {
	disk, err := filepath.Abs(vm.Disk)
	if err != nil {
		disk = vm.Disk
	}
	return []string{"qemu-img", "create", "-q", "-f", "qcow2", "-b", disk, "-F", "qcow2", vm.Overlay}
}

// KnownHosts rewrites known_hosts lines that name nodes (by name or
// hostname, as ssh-keyscan of the nodes or a disk's host key gives them)
// into lines for the nodes' lab addresses, where the lab dials them. A
// line for a host that is no node is an error: it would check nothing.
func (p *Plan) KnownHosts(text []byte) ([]byte, error) {
	byName := map[string]string{}
	for _, vm := range p.VMs {
		for _, n := range vm.Names() {
			byName[n] = vm.IP.String()
		}
	}
	var out []byte
	for rest := text; ; {
		marker, hosts, key, _, next, err := ssh.ParseKnownHosts(rest)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("known hosts: %v", err)
		}
		rest = next
		if marker != "" {
			return nil, fmt.Errorf("known hosts: @%s lines are not supported", marker)
		}
		var ips []string
		for _, h := range hosts {
			ip, ok := byName[strings.ToLower(h)]
			if !ok {
				return nil, fmt.Errorf("known hosts: %q is not a node of the cluster (lines name nodes by name or hostname)", h)
			}
			ips = append(ips, ip)
		}
		out = append(out, knownhosts.Line(ips, key)+"\n"...)
	}
}
