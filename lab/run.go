package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sourcegraph/conc/pool"
)

// Runner runs commands on nodes and opens connections through them: the
// lab's SSH (remote.SSH), reaching every node at its lab address.
type Runner interface {
	Run(ctx context.Context, host string, argv []string) ([]byte, error)
	Dial(ctx context.Context, host, addr string) (net.Conn, error)
}

// Lab is a running lab: the bridge, dnsmasq and a qemu per node.
type Lab struct {
	Plan *Plan
	log  io.Writer

	mu      sync.Mutex
	links   []string   // network interfaces made, to delete
	rules   [][]string // iptables rules added, to delete
	forward string     // ip_forward before the lab set it, to restore
	procs   []*proc
	qemu    map[string]*proc
	stopped bool
}

// proc is a child process and, once it ended, how.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	out  string // its log file
}

// Tools are the programs the lab runs; Start names every one it lacks.
var Tools = []string{"ip", "dnsmasq", "qemu-img", "qemu-system-x86_64"}

// Start makes the network, starts dnsmasq and boots every VM; it does
// not wait for them. On an error it undoes what it did.
func Start(ctx context.Context, p *Plan, log io.Writer) (l *Lab, err error) {
	var missing []string
	tools := Tools
	if p.Outbound {
		tools = append(slices.Clone(tools), "iptables")
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("lab: %s not found on PATH (qemu-system-x86, qemu-utils, dnsmasq, iproute2 and iptables provide them)", strings.Join(missing, ", "))
	}
	if err := os.MkdirAll(p.RunDir, 0o755); err != nil {
		return nil, err
	}
	l = &Lab{Plan: p, log: log, qemu: map[string]*proc{}}
	defer func() {
		if err != nil {
			l.Stop()
		}
	}()
	fmt.Fprintf(log, "lab: %d VMs with %s (%s), network %s on %s\n", len(p.VMs), p.Accel, p.AccelWhy, p.Prefix, p.Bridge)
	for _, w := range p.Warnings {
		fmt.Fprintf(log, "lab: WARNING: %s\n", w)
	}
	if err := l.link(ctx, p.Bridge, []string{"link", "add", p.Bridge, "type", "bridge"}); err != nil {
		return nil, err
	}
	if err := ip(ctx, "addr", "add", netip4(p.Gateway.String(), p.Prefix.Bits()), "dev", p.Bridge); err != nil {
		return nil, err
	}
	if err := ip(ctx, "link", "set", p.Bridge, "up"); err != nil {
		return nil, err
	}
	for _, vm := range p.VMs {
		if err := l.link(ctx, vm.Tap, []string{"tuntap", "add", "dev", vm.Tap, "mode", "tap"}); err != nil {
			return nil, err
		}
		if err := ip(ctx, "link", "set", vm.Tap, "master", p.Bridge, "up"); err != nil {
			return nil, err
		}
	}
	if p.Outbound {
		if err := l.route(ctx); err != nil {
			return nil, err
		}
	}
	dns, err := l.spawn("dnsmasq", p.DnsmasqArgs())
	if err != nil {
		return nil, err
	}
	if err := waitDNS(ctx, p, dns); err != nil {
		return nil, err
	}
	for _, vm := range p.VMs {
		os.Remove(vm.Overlay)
		os.Remove(vm.Console)
		if out, err := exec.CommandContext(ctx, p.OverlayArgs(vm)[0], p.OverlayArgs(vm)[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: overlay on %s: %v: %s", vm.Node.Name, vm.Disk, err, bytes.TrimSpace(out))
		}
		q, err := l.spawn(vm.Node.Name, p.QemuArgs(vm))
		if err != nil {
			return nil, err
		}
		l.qemu[vm.Node.Name] = q
	}
	return l, nil
}

// route makes the lab the VMs' router: IPv4 forwarding on, and the
// plan's NAT rules, each remembered to undo.
func (l *Lab) route(ctx context.Context) error {
	const forward = "/proc/sys/net/ipv4/ip_forward"
	was, err := os.ReadFile(forward)
	if err != nil {
		return fmt.Errorf("outbound: %w", err)
	}
	if err := os.WriteFile(forward, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("outbound: turning IPv4 forwarding on: %w", err)
	}
	l.mu.Lock()
	l.forward = string(was)
	l.mu.Unlock()
	for _, r := range l.Plan.NATRules() {
		args := append([]string{r[0], r[1], "-A"}, r[2:]...)
		if out, err := exec.CommandContext(ctx, "iptables", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("outbound: iptables %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		l.mu.Lock()
		l.rules = append(l.rules, r)
		l.mu.Unlock()
	}
	return nil
}

func netip4(addr string, bits int) string { return fmt.Sprintf("%s/%d", addr, bits) }

// link makes a network interface and remembers it, to delete.
func (l *Lab) link(ctx context.Context, name string, args []string) error {
	if err := ip(ctx, args...); err != nil {
		return err
	}
	l.mu.Lock()
	l.links = append(l.links, name)
	l.mu.Unlock()
	return nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s (the lab needs root, or CAP_NET_ADMIN and /dev/net/tun)", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// spawn starts a process that lives as long as the lab, its output in
// RunDir/<name>.log.
func (l *Lab) spawn(name string, argv []string) (*proc, error) {
	logPath := l.Plan.RunDir + "/" + name + ".log"
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), out: logPath}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// exited says how a process ended, with the end of its log, or nil while
// it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		out, _ := os.ReadFile(p.out)
		return fmt.Errorf("%s exited (%v): %s", p.name, p.err, strings.Join(lastLines(string(out), 5), "; "))
	default:
		return nil
	}
}

// waitDNS waits until dnsmasq answers for the first node, or exits.
func waitDNS(ctx context.Context, p *Plan, dns *proc) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(p.Gateway.String(), "53"))
	}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ask, cancel := context.WithTimeout(ctx, time.Second)
		addrs, err := r.LookupHost(ask, p.VMs[0].Node.Hostname)
		cancel()
		if err == nil && slices.Contains(addrs, p.VMs[0].IP.String()) {
			return nil
		}
		if exit := dns.exited(); exit != nil {
			return exit
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dnsmasq does not answer for %s at %s within 10 s (%v)", p.VMs[0].Node.Hostname, p.Gateway, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends every process and deletes the network; it may be called more
// than once. The overlays and console logs stay in RunDir.
func (l *Lab) Stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	procs, links, rules, forward := l.procs, l.links, l.rules, l.forward
	l.mu.Unlock()
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	for i := len(links) - 1; i >= 0; i-- {
		exec.Command("ip", "link", "del", links[i]).Run()
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		exec.Command("iptables", append([]string{r[0], r[1], "-D"}, r[2:]...)...).Run()
	}
	if forward != "" {
		os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(forward), 0o644)
	}
}

// Console is the last lines of a VM's serial console, terminal escapes
// removed: what it printed before it failed.
func (l *Lab) Console(vm VM, lines int) string {
	out, err := os.ReadFile(vm.Console)
	if err != nil {
		return fmt.Sprintf("(no console log: %v)", err)
	}
	last := lastLines(string(out), lines)
	if len(last) == 0 {
		return "(the console printed nothing)"
	}
	return strings.Join(last, "\n")
}

var escapes = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|[\x00-\x08\x0b-\x1f\x7f]`)

// lastLines is the last n non-blank lines of text, escapes removed.
func lastLines(text string, n int) []string {
	var out []string
	for _, line := range strings.Split(escapes.ReplaceAllString(strings.ReplaceAll(text, "\r", "\n"), ""), "\n") {
		if strings.TrimSpace(line) != "" {
			out = append(out, strings.TrimRight(line, " \t"))
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// BootError is a VM that did not come up: which, why, and its console.
type BootError struct {
	Node    string
	Err     error
	Console string
}

func (e *BootError) Error() string {
	return fmt.Sprintf("%s: %v; the last lines of its console:\n%s", e.Node, e.Err, indent(e.Console))
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// WaitSSH waits until every VM answers over SSH as its own hostname, and
// returns the seconds each took. qemu accepts connections for a guest
// before the guest listens, so only an answer counts. A VM whose qemu
// exits, or that has not answered within timeout, fails with its console.
func (l *Lab) WaitSSH(ctx context.Context, run Runner, timeout time.Duration, poll time.Duration) (map[string]time.Duration, error) {
	start := time.Now()
	took := map[string]time.Duration{}
	var mu sync.Mutex
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError()
	for _, vm := range l.Plan.VMs {
		p.Go(func(ctx context.Context) error {
			fail := func(err error) error {
				return &BootError{Node: vm.Node.Name, Err: err, Console: l.Console(vm, 20)}
			}
			var last error
			for {
				if err := l.qemu[vm.Node.Name].exited(); err != nil {
					return fail(err)
				}
				ask, cancel := context.WithTimeout(ctx, poll+5*time.Second)
				out, err := run.Run(ask, vm.IP.String(), []string{"cat", "/etc/hostname"})
				cancel()
				if err == nil {
					name := strings.TrimSpace(string(out))
					if !slices.Contains(vm.Names(), name) {
						return fail(fmt.Errorf("answers at %s as %q, not as %s: is it another node's disk?", vm.IP, name, vm.Node.Hostname))
					}
					mu.Lock()
					took[vm.Node.Name] = time.Since(start)
					mu.Unlock()
					return nil
				}
				last = err
				// A host key that differs, or a key the node refuses, will
				// not change by waiting.
				if strings.Contains(err.Error(), "does not match known_hosts") {
					return fail(err)
				}
				if strings.Contains(err.Error(), "unable to authenticate") {
					return fail(fmt.Errorf("refuses the SSH key (is it the key the disks were built with, and the disk user?): %v", err))
				}
				if time.Since(start) > timeout {
					return fail(fmt.Errorf("no answer over SSH at %s within %s (last: %v)", vm.IP, timeout, last))
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(poll):
				}
			}
		})
	}
	if err := p.Wait(); err != nil {
		var be *BootError
		if errors.As(err, &be) {
			return took, be
		}
		return took, err
	}
	return took, nil
}
