package realkafka

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"dagger/kafka-bootc/internal/fakenodes"
	"dagger/kafka-bootc/internal/shell"
	"dagger/kafka-bootc/nodes"

	"golang.org/x/crypto/ssh"
)

// Deployment is a build of a node: the digest bootc reports for it, and
// the rendering it runs.
type Deployment struct {
	Digest string
	Model  *nodes.Cluster
}

// Machines serves the cluster's nodes over SSH as the day-2 operations
// reach them: a real sshd in each node's network namespace, on port 22 of
// its address, and the node's commands acting on its real Kafka. The
// operating system around Kafka is the stand-in: bootc's deployments
// (status, upgrade from what the node's tag points to, rollback), systemd
// (is-active, restart, reboot) and podman exec, each answered by the
// harness for the node, as the commands of kafka-bootc's sudoers drop-in
// do on a bootc node. Kafka and the SSH path are real.
type Machines struct {
	cl *Cluster
	// User logs in with ClientKey; KnownHosts lists every node's host key
	// under its address, which is how the test process, outside the
	// nodes' name resolution, reaches them (Host).
	User       string
	ClientKey  []byte
	KnownHosts []byte

	dir     string
	sock    net.Listener
	mu      sync.Mutex
	node    map[string]*machine
	tags    map[string]Deployment
	away    []Interval
	stopped bool
}

// Interval is a stretch of time during which a node's Kafka was away.
type Interval struct {
	Node       string
	From, Till time.Time
}

type machine struct {
	n                        *Node
	booted, staged, rollback *Deployment
	boots                    int
	sshd                     *exec.Cmd
	sshdConf                 string
	rebooting                bool
	prevNodePEM, prevCACert  []byte
	awayFrom                 time.Time
}

// Serve starts an sshd on every node, each node booted into first.
func (cl *Cluster) Serve(first Deployment) (*Machines, error) {
	if _, err := exec.LookPath("sshd"); err != nil {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			return nil, errors.New("the nodes' SSH needs sshd (apt-get install openssh-server)")
		}
	}
	m := &Machines{cl: cl, User: "root", dir: filepath.Join(cl.Dir, "machines"), node: map[string]*machine{}, tags: map[string]Deployment{}}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, err
	}
	clientPub, clientKey, err := newKey()
	if err != nil {
		return nil, err
	}
	m.ClientKey = clientKey
	if err := os.WriteFile(filepath.Join(m.dir, "authorized_keys"), clientPub, 0o600); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	sockPath := filepath.Join(m.dir, "machines.sock")
	if m.sock, err = net.Listen("unix", sockPath); err != nil {
		return nil, err
	}
	go m.accept()
	os.MkdirAll("/run/sshd", 0o755)
	var known bytes.Buffer
	for _, n := range cl.Nodes {
		d := first
		mc := &machine{n: n, booted: &d}
		m.node[n.Hostname] = mc
		hostPub, hostKey, err := newKey()
		if err != nil {
			return nil, err
		}
		keyPath := filepath.Join(m.dir, n.Name+".host_key")
		if err := os.WriteFile(keyPath, hostKey, 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(&known, "%s %s", n.Addr, hostPub)
		mc.sshdConf = filepath.Join(m.dir, n.Name+".sshd_config")
		conf := fmt.Sprintf(`ListenAddress %s:22
HostKey %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile %s
ForceCommand %s
SetEnv %s=%s %s=%s
`, n.Addr, keyPath, filepath.Join(m.dir, "authorized_keys"), filepath.Join(m.dir, n.Name+".sshd.pid"),
			shell.Quote(self), nodeShellSocket, sockPath, nodeShellHost, n.Hostname)
		if err := os.WriteFile(mc.sshdConf, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		if err := m.startSSHD(mc); err != nil {
			return nil, err
		}
	}
	m.KnownHosts = known.Bytes()
	return m, nil
}

// Host is where the test process reaches a node's sshd.
func (m *Machines) Host(name string) string { return m.cl.Node(name).Addr.String() }

// SetTag points a node's tag at a deployment: what bootc upgrade stages.
func (m *Machines) SetTag(node string, d Deployment) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tags[node] = d
}

// Booted is the deployment a node runs.
func (m *Machines) Booted(name string) Deployment {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.node[m.cl.Node(name).Hostname].booted
}

// Away lists the stretches during which a node's Kafka was away, ended
// ones and the one under way.
func (m *Machines) Away() []Interval {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]Interval(nil), m.away...)
	for _, mc := range m.node {
		if !mc.awayFrom.IsZero() {
			out = append(out, Interval{Node: mc.n.Name, From: mc.awayFrom})
		}
	}
	return out
}

// Freeze stops a node's sshd and its sessions with SIGSTOP: it accepts
// connections and never answers, on a new connection or an open one, as a
// node that hangs does. Thaw undoes it.
func (m *Machines) Freeze(name string) error { return m.signal(name, "STOP") }

// Thaw lets a frozen node's sshd go on.
func (m *Machines) Thaw(name string) error { return m.signal(name, "CONT") }

func (m *Machines) signal(name, sig string) error {
	m.mu.Lock()
	mc := m.node[m.cl.Node(name).Hostname]
	m.mu.Unlock()
	if mc == nil || mc.sshd == nil {
		return fmt.Errorf("%s: no sshd", name)
	}
	pids := append([]int{mc.sshd.Process.Pid}, descendants(mc.sshd.Process.Pid)...)
	for _, p := range pids {
		if sig == "STOP" {
			syscall.Kill(p, syscall.SIGSTOP)
		} else {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}
	return nil
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after
		// its closing parenthesis.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 {
			parent[p], _ = strconv.Atoi(fields[1])
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// Close stops the sshds and the socket.
func (m *Machines) Close() {
	m.mu.Lock()
	m.stopped = true
	for _, mc := range m.node {
		m.stopSSHD(mc)
	}
	m.mu.Unlock()
	m.sock.Close()
}

func (m *Machines) startSSHD(mc *machine) error {
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	cmd := exec.Command("ip", "netns", "exec", mc.n.NS, bin, "-D", "-e", "-f", mc.sshdConf)
	log, err := os.OpenFile(filepath.Join(mc.n.Dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	go func() { cmd.Wait(); log.Close() }()
	mc.sshd = cmd
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(mc.n.Addr.String(), "22"), time.Second); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("%s: sshd did not start", mc.n.Name)
}

func (m *Machines) stopSSHD(mc *machine) {
	if mc.sshd == nil {
		return
	}
	exec.Command("kill", "-CONT", fmt.Sprint(mc.sshd.Process.Pid)).Run()
	exec.Command("pkill", "-KILL", "-P", fmt.Sprint(mc.sshd.Process.Pid)).Run()
	mc.sshd.Process.Kill()
	mc.sshd = nil
}

// The node shell: sshd runs the test binary itself for every command
// (ForceCommand), with the node's hostname and the harness's socket in its
// environment; Main sees them and hands the command to the harness.
const (
	nodeShellSocket = "REALKAFKA_NODE_SOCKET"
	nodeShellHost   = "REALKAFKA_NODE_HOST"
)

type shellRequest struct {
	Host  string
	Argv  []string
	Stdin []byte
}

type shellAnswer struct {
	Stdout, Stderr []byte
	Code           int
}

// nodeShell is the test binary run by sshd as a node's shell: it passes
// the command and its input to the harness and prints the answer.
func nodeShell() int {
	conn, err := net.Dial("unix", os.Getenv(nodeShellSocket))
	if err != nil {
		fmt.Fprintln(os.Stderr, "node shell:", err)
		return 255
	}
	defer conn.Close()
	// The login shell reads the command line, as on a node.
	words, err := exec.Command("/bin/sh", "-c", `printf '%s\0' `+os.Getenv("SSH_ORIGINAL_COMMAND")).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "node shell:", err)
		return 2
	}
	argv := strings.Split(strings.TrimSuffix(string(words), "\x00"), "\x00")
	stdin, _ := io.ReadAll(os.Stdin)
	req := shellRequest{Host: os.Getenv(nodeShellHost), Argv: argv, Stdin: stdin}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		fmt.Fprintln(os.Stderr, "node shell:", err)
		return 255
	}
	var a shellAnswer
	if err := json.NewDecoder(conn).Decode(&a); err != nil {
		fmt.Fprintln(os.Stderr, "node shell:", err)
		return 255
	}
	os.Stdout.Write(a.Stdout)
	os.Stderr.Write(a.Stderr)
	return a.Code
}

func (m *Machines) accept() {
	for {
		conn, err := m.sock.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			var req shellRequest
			if err := json.NewDecoder(conn).Decode(&req); err != nil {
				return
			}
			stdout, stderr, code := m.handle(req)
			json.NewEncoder(conn).Encode(shellAnswer{Stdout: stdout, Stderr: stderr, Code: code})
		}()
	}
}

// handle answers a command on a node as its operating system would.
func (m *Machines) handle(req shellRequest) (stdout, stderr []byte, code int) {
	m.mu.Lock()
	mc := m.node[req.Host]
	m.mu.Unlock()
	if mc == nil {
		return nil, []byte("no such node\n"), 255
	}
	argv := req.Argv
	root := len(argv) > 2 && argv[0] == "sudo" && argv[1] == "-n"
	cmd := strings.Join(argv, " ")
	if root {
		cmd = strings.Join(argv[2:], " ")
	}
	ok := func(out string) ([]byte, []byte, int) { return []byte(out), nil, 0 }
	fail := func(code int, msg string) ([]byte, []byte, int) { return nil, []byte(msg + "\n"), code }
	unit := mc.n.Role.Unit() + ".service"
	switch {
	case cmd == "cat /etc/hostname":
		return ok(mc.n.Name + "\n")
	case cmd == "test -e /run/ostree-booted":
		return ok("")
	case cmd == "cat /proc/sys/kernel/random/boot_id":
		m.mu.Lock()
		defer m.mu.Unlock()
		return ok(fmt.Sprintf("boot-%d\n", mc.boots))
	case root && cmd == "/usr/bin/bootc status --format=json":
		m.mu.Lock()
		defer m.mu.Unlock()
		staged := ""
		if mc.staged != nil {
			staged = mc.staged.Digest
		}
		return ok(fakenodes.BootcJSON(mc.booted.Digest, staged))
	case root && cmd == "/usr/bin/bootc upgrade":
		m.mu.Lock()
		defer m.mu.Unlock()
		tag, has := m.tags[mc.n.Name]
		if has && tag.Digest != mc.booted.Digest {
			mc.staged = &tag
			return ok("Queued for next boot: " + tag.Digest + "\n")
		}
		return ok("No changes in: " + mc.booted.Digest + "\n")
	case root && cmd == "/usr/bin/bootc rollback":
		m.mu.Lock()
		defer m.mu.Unlock()
		if mc.rollback == nil {
			return fail(1, "error: No rollback deployment")
		}
		mc.staged = mc.rollback
		return ok("Next boot: rollback deployment\n")
	case root && cmd == "/usr/bin/systemctl reboot":
		go m.reboot(mc)
		return ok("")
	case root && cmd == "/usr/bin/systemctl restart "+unit:
		m.markAway(mc)
		err := mc.n.Restart()
		mc.n.waitListening(2 * time.Minute)
		m.markBack(mc)
		if err != nil {
			return fail(1, err.Error())
		}
		return ok("")
	case root && cmd == "/usr/bin/systemctl restart "+nodes.ExporterUnit+".service":
		return ok("")
	case root && strings.HasPrefix(cmd, nodes.TLSToolPath+" "):
		return m.tls(mc, argv[3:], req.Stdin)
	}
	unitArgv := argv
	if root {
		unitArgv = argv[2:]
	}
	// podman exec needs root; is-active does not.
	if root || unitArgv[0] != "/usr/bin/podman" {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if out, code, err, handled := mc.n.unitCommand(ctx, unitArgv); handled {
			if err != nil && code != 3 {
				return out, []byte(err.Error() + "\n"), code
			}
			return out, nil, code
		}
	}
	return fail(1, "sudo: a password is required (kafka-bootc's sudoers drop-in does not allow "+cmd+")")
}

// tls is the role image's TLS tool: install a file read from standard
// input (keeping the one it replaces), restore that one, show the trust.
func (m *Machines) tls(mc *machine, args []string, stdin []byte) ([]byte, []byte, int) {
	if len(args) != 2 {
		return nil, []byte("usage: tls install|restore|show FILE\n"), 2
	}
	path := map[string]string{nodes.NodePEMFile: nodes.NodePEMPath, nodes.CACertFile: nodes.CACertPath}[args[1]]
	if path == "" {
		return nil, []byte("tls: no such file\n"), 2
	}
	p := mc.n.root(path)
	switch args[0] {
	case "show":
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, []byte(err.Error() + "\n"), 1
		}
		return b, nil, 0
	case "install":
		old, _ := os.ReadFile(p)
		if err := os.WriteFile(p+".prev", old, 0o400); err != nil {
			return nil, []byte(err.Error() + "\n"), 1
		}
		if err := writeFile(p, stdin, map[bool]os.FileMode{true: 0o400, false: 0o644}[args[1] == nodes.NodePEMFile], 0, 0); err != nil {
			return nil, []byte(err.Error() + "\n"), 1
		}
		return nil, nil, 0
	case "restore":
		old, err := os.ReadFile(p + ".prev")
		if err != nil {
			return nil, []byte("tls: nothing to restore\n"), 1
		}
		if err := writeFile(p, old, map[bool]os.FileMode{true: 0o400, false: 0o644}[args[1] == nodes.NodePEMFile], 0, 0); err != nil {
			return nil, []byte(err.Error() + "\n"), 1
		}
		return nil, nil, 0
	}
	return nil, []byte("tls: unknown action\n"), 2
}

// reboot takes the node away as a reboot does: its SSH and its Kafka stop
// (Kafka with its controlled shutdown, as systemd stops its unit), the
// staged deployment becomes the booted one, and the node comes back
// running it.
func (m *Machines) reboot(mc *machine) {
	time.Sleep(200 * time.Millisecond) // the command's answer goes out first
	m.mu.Lock()
	if mc.rebooting || m.stopped {
		m.mu.Unlock()
		return
	}
	mc.rebooting = true
	m.stopSSHD(mc)
	m.mu.Unlock()
	m.markAway(mc)
	mc.n.Stop()
	m.mu.Lock()
	if mc.staged != nil {
		mc.rollback, mc.booted, mc.staged = mc.booted, mc.staged, nil
	}
	mc.boots++
	next := mc.booted.Model
	m.mu.Unlock()
	time.Sleep(2 * time.Second) // firmware, kernel, systemd
	var err error
	if next != mc.n.model {
		err = mc.n.Upgrade(next)
	} else {
		err = mc.n.Start()
	}
	if err != nil {
		fmt.Fprintf(m.cl.log, "%s: boot: %v\n", mc.n.Name, err)
	}
	mc.n.waitListening(2 * time.Minute)
	m.markBack(mc)
	m.mu.Lock()
	defer m.mu.Unlock()
	mc.rebooting = false
	if !m.stopped {
		if err := m.startSSHD(mc); err != nil {
			fmt.Fprintf(m.cl.log, "%s: %v\n", mc.n.Name, err)
		}
	}
}

func (m *Machines) markAway(mc *machine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc.awayFrom = time.Now()
}

func (m *Machines) markBack(mc *machine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.away = append(m.away, Interval{Node: mc.n.Name, From: mc.awayFrom, Till: time.Now()})
	mc.awayFrom = time.Time{}
}

// newKey makes an ed25519 key pair: the public key as an authorized_keys
// line, the private key in OpenSSH's PEM.
func newKey() (pub, priv []byte, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(sk, "")
	if err != nil {
		return nil, nil, err
	}
	sshPub, err := ssh.NewPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	return ssh.MarshalAuthorizedKey(sshPub), pem.EncodeToMemory(block), nil
}
