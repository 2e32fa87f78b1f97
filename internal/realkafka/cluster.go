package realkafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
)

// Options tune a cluster.
type Options struct {
	// Dir keeps the nodes' files and logs; a new temporary directory when
	// empty, removed by Close.
	Dir string
	// CACert and CAKey issue the nodes' certificates in tls mode; a new CA
	// when empty.
	CACert, CAKey []byte
	// Log receives what the harness does, a line per step.
	Log io.Writer
}

// Cluster is a rendered cluster running as real Kafka nodes.
type Cluster struct {
	C     *nodes.Cluster
	Nodes []*Node
	// CA issued the nodes' certificates (tls mode).
	CA *pki.CA
	// Dir holds every node's files: Dir/<node>/root is what the node's
	// disk would hold, Dir/<node>/kafka.log what its Kafka printed.
	Dir string

	dist    *Dist
	client  string
	bridge  string
	gateway netip.Addr
	prefix  int
	hosts   []byte
	ownDir  bool
	rule    []string
	log     io.Writer
	mu      sync.Mutex
}

// Available says why the real Kafka cannot run here, or nil: it needs
// root (network and mount namespaces, bind mounts), ip, unshare, setpriv,
// systemd-tmpfiles, Java and Maven.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("the real Kafka runs each node in network and mount namespaces of its own, which needs root")
	}
	for _, tool := range []string{"ip", "unshare", "setpriv", "systemd-tmpfiles", "java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the real Kafka needs %s (apt-get install iproute2 util-linux systemd openjdk-17-jre-headless maven)", tool)
		}
	}
	return nil
}

// Start renders c and starts every node, each as its disk would run it.
// It returns once every node's Kafka process runs; Wait tells when the
// cluster has formed.
func Start(c *nodes.Cluster, o Options) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dist, err := Fetch(c.KafkaVersion.String())
	if err != nil {
		return nil, err
	}
	if err := checkAgent(c, dist); err != nil {
		return nil, err
	}
	cl := &Cluster{C: c, Dir: o.Dir, dist: dist, log: o.Log}
	if cl.log == nil {
		cl.log = io.Discard
	}
	if cl.Dir == "" {
		if cl.Dir, err = os.MkdirTemp("", "realkafka-"); err != nil {
			return nil, err
		}
		cl.ownDir = true
	}
	// appuser runs the nodes' scripts from it.
	if err := os.Chmod(cl.Dir, 0o755); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			cl.Close()
		}
	}()
	if c.TLS {
		certPEM, keyPEM := o.CACert, o.CAKey
		if certPEM == nil {
			if certPEM, keyPEM, err = pki.NewCA("kafka-bootc test CA", 365, time.Now()); err != nil {
				return nil, err
			}
		}
		if cl.CA, err = pki.LoadCA(certPEM, keyPEM, time.Now()); err != nil {
			return nil, err
		}
	}
	if err := cl.network(); err != nil {
		return nil, err
	}
	for i, n := range c.Nodes {
		node, err := cl.newNode(n, i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		cl.Nodes = append(cl.Nodes, node)
	}
	if err := cl.writeHosts(); err != nil {
		return nil, err
	}
	if err := cl.clientNamespace(); err != nil {
		return nil, err
	}
	for _, n := range cl.Nodes {
		if err := n.prepare(); err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	for _, n := range cl.Nodes {
		if err := n.Start(); err != nil {
			return nil, err
		}
	}
	ok = true
	return cl, nil
}

// writeHosts writes the hosts file that every node and the clients read:
// each node's address and names. It is written in place: the nodes' bind
// mounts of it see the new content.
func (cl *Cluster) writeHosts() error {
	var hosts bytes.Buffer
	hosts.WriteString("127.0.0.1 localhost\n")
	for _, n := range cl.Nodes {
		fmt.Fprintf(&hosts, "%s %s", n.Addr, n.Hostname)
		if n.Name != n.Hostname {
			fmt.Fprintf(&hosts, " %s", n.Name)
		}
		hosts.WriteString("\n")
	}
	cl.hosts = hosts.Bytes()
	return os.WriteFile(filepath.Join(cl.Dir, "hosts"), cl.hosts, 0o644)
}

// AddNode starts a node that model names and the running cluster lacks,
// as a new machine booted from its disk: model is the cluster file that
// grew (more controllers, or brokers), the running nodes keep theirs. It
// gets its own namespace and address, every node's hosts file names it,
// and its Kafka starts; Wait does not cover it.
func (cl *Cluster) AddNode(model *nodes.Cluster, name string) (*Node, error) {
	n, err := model.Node(name)
	if err != nil {
		return nil, err
	}
	if cl.Node(name) != nil {
		return nil, fmt.Errorf("%s: runs already", name)
	}
	node, err := cl.newNode(n, len(cl.Nodes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	node.model = model
	cl.Nodes = append(cl.Nodes, node)
	if err := cl.writeHosts(); err != nil {
		return nil, err
	}
	if err := node.prepare(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return node, node.Start()
}

// checkAgent holds the JMX exporter that Maven resolved to the digest that
// the cluster pins for it.
func checkAgent(c *nodes.Cluster, d *Dist) error {
	b, err := os.ReadFile(d.Agent)
	if err != nil {
		return err
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != c.JMXExporterSHA256 {
		return fmt.Errorf("the JMX exporter from Maven Central (%s) does not have the digest the cluster pins (%s): the harness resolves jmx.version of its pom, which must be the release of %s", filepath.Base(d.Agent), c.JMXExporterSHA256, c.JMXExporterURL)
	}
	return nil
}

// network makes the cluster's bridge, with an address for the test
// process, on a /24 that no route of the machine uses.
func (cl *Cluster) network() error {
	sweep()
	tag := make([]byte, 3)
	rand.Read(tag)
	cl.bridge = "rk" + hex.EncodeToString(tag)
	if err := os.MkdirAll(owners, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(owners, cl.bridge), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	routes, _ := exec.Command("ip", "-4", "route", "show").Output()
	for try := 0; ; try++ {
		b := make([]byte, 2)
		rand.Read(b)
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200 + b[0]%50, b[1], 0}), 24)
		if !strings.Contains(string(routes), prefix.String()) {
			cl.gateway = prefix.Addr().Next()
			cl.prefix = 24
			break
		}
		if try > 20 {
			return errors.New("no free 10.200-249.x.0/24 for the cluster's bridge")
		}
	}
	if err := run("ip", "link", "add", cl.bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := run("ip", "addr", "add", fmt.Sprintf("%s/%d", cl.gateway, cl.prefix), "dev", cl.bridge); err != nil {
		return err
	}
	if err := run("ip", "link", "set", cl.bridge, "up"); err != nil {
		return err
	}
	// Where bridged traffic goes through iptables, let the cluster's own
	// through whatever the FORWARD policy says.
	if b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil && strings.TrimSpace(string(b)) == "1" {
		if _, err := exec.LookPath("iptables"); err == nil {
			rule := []string{"FORWARD", "-i", cl.bridge, "-o", cl.bridge, "-j", "ACCEPT"}
			if err := run("iptables", append([]string{"-I"}, rule...)...); err == nil {
				cl.rule = rule
			}
		}
	}
	return nil
}

// owners records, for each cluster's bridge, the test process that made
// it.
const owners = "/run/realkafka"

// sweep removes the clusters whose test process is gone without closing
// them (killed, or out of time): their Kafka processes, namespaces and
// bridge.
func sweep() {
	entries, _ := os.ReadDir(owners)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(owners, e.Name()))
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && syscall.Kill(pid, 0) == nil {
			continue
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			ns, _, _ := strings.Cut(line, " ")
			if !strings.HasSuffix(ns, "."+e.Name()) {
				continue
			}
			pids, _ := exec.Command("ip", "netns", "pids", ns).Output()
			for _, p := range strings.Fields(string(pids)) {
				if n, err := strconv.Atoi(p); err == nil {
					syscall.Kill(n, syscall.SIGKILL)
				}
			}
			run("ip", "netns", "del", ns)
		}
		run("ip", "link", "del", e.Name())
		os.Remove(filepath.Join(owners, e.Name()))
	}
}

// Close stops every node at once (no controlled shutdown) and removes the
// namespaces, the bridge and, when the harness made it, the directory.
func (cl *Cluster) Close() {
	for _, n := range cl.Nodes {
		n.Kill()
		run("ip", "netns", "del", n.NS)
	}
	if cl.client != "" {
		run("ip", "netns", "del", cl.client)
	}
	if cl.bridge != "" {
		run("ip", "link", "del", cl.bridge)
		os.Remove(filepath.Join(owners, cl.bridge))
	}
	if cl.rule != nil {
		run("iptables", append([]string{"-D"}, cl.rule...)...)
	}
	if cl.ownDir {
		os.RemoveAll(cl.Dir)
	}
}

// Node finds a node by name.
func (cl *Cluster) Node(name string) *Node {
	for _, n := range cl.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Dist is the Kafka release the cluster runs.
func (cl *Cluster) Dist() *Dist { return cl.dist }

// Addr is the address of the node with the given hostname or name, for a
// client in the test process, which reaches every node over the bridge.
func (cl *Cluster) Addr(host string) (netip.Addr, bool) {
	for _, n := range cl.Nodes {
		if n.Hostname == host || n.Name == host {
			return n.Addr, true
		}
	}
	return netip.Addr{}, false
}

// Wait waits until every broker is registered and unfenced and the quorum
// has a leader, asking Kafka's own tools on the nodes.
func (cl *Cluster) Wait(ctx context.Context) error {
	var last error
	for {
		for _, n := range cl.Nodes {
			if !n.Running() {
				return fmt.Errorf("%s: Kafka exited\n%s", n.Name, cl.Tails(15))
			}
		}
		if last = cl.formed(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not form: %v\n%s", last, cl.Tails(15))
		case <-time.After(2 * time.Second):
		}
	}
}

func (cl *Cluster) formed(ctx context.Context) error {
	var broker, controller *Node
	for _, n := range cl.Nodes {
		if !n.Running() {
			return fmt.Errorf("%s: Kafka exited", n.Name)
		}
		if n.Role == nodes.Broker && broker == nil {
			broker = n
		}
		if n.Role == nodes.Controller && controller == nil {
			controller = n
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	argv, err := probeArgv(cl.C, nodes.Controller, nodes.ProbeQuorum)
	if err != nil {
		return err
	}
	out, err := controller.Container(ctx, argv...)
	if err != nil || !strings.Contains(string(out), "Leader") {
		return fmt.Errorf("metadata quorum: %v %s", err, out)
	}
	if argv, err = probeArgv(cl.C, nodes.Broker, nodes.ProbeLiveBrokers); err != nil {
		return err
	}
	out, err = broker.Container(ctx, argv...)
	if err != nil {
		return fmt.Errorf("live brokers: %v %s", err, out)
	}
	for _, n := range cl.Nodes {
		if n.Role == nodes.Broker && !strings.Contains(string(out), "(id: "+strconv.Itoa(n.ID)+" ") {
			return fmt.Errorf("broker %d is not live yet", n.ID)
		}
	}
	return nil
}

// Tails is the last lines of every node's Kafka log, for a failure's
// message.
func (cl *Cluster) Tails(lines int) string {
	var b strings.Builder
	for _, n := range cl.Nodes {
		fmt.Fprintf(&b, "--- %s\n%s", n.Name, n.Tail(lines))
	}
	return b.String()
}

// run runs a command of the harness's set-up, returning its output in
// the error.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
