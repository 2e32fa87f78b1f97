package realkafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"dagger/kafka-bootc/internal/shell"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
)

// Node is one node: its network namespace, the files its disk would hold,
// and its Kafka process.
type Node struct {
	nodes.Node
	// NS is the node's network namespace: its hostname, and the cluster's
	// bridge, since two clusters may run at once.
	NS string
	// Addr is the node's address on the cluster's bridge.
	Addr netip.Addr
	// Dir holds the node's files: root/ is its disk, ctr/ what its Kafka
	// container sees, kafka.log what its Kafka printed.
	Dir string
	// Container is what podman would run for the node's Kafka quadlet.
	Ctr Container

	cl *Cluster
	// model is the rendering the node runs, and dist its release: a node
	// that Upgrade moved runs another than the cluster's.
	model *nodes.Cluster
	dist  *Dist
	veth  string
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
}

// appUID is the uid of appuser, whom the apache/kafka image runs Kafka as.
const appUID = nodes.KafkaUID

func (cl *Cluster) newNode(n nodes.Node, i int) (*Node, error) {
	node := &Node{Node: n, cl: cl, model: cl.C, dist: cl.dist,
		NS:   n.Hostname + "." + cl.bridge,
		Addr: netip.AddrFrom4([4]byte{cl.gateway.As4()[0], cl.gateway.As4()[1], cl.gateway.As4()[2], byte(10 + i)}),
		Dir:  filepath.Join(cl.Dir, n.Name),
		veth: fmt.Sprintf("v%s%d", cl.bridge[2:], i),
	}
	if i > 200 {
		return nil, errors.New("more than 200 nodes")
	}
	steps := [][]string{
		{"ip", "netns", "add", node.NS},
		{"ip", "link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.NS},
		{"ip", "link", "set", node.veth, "master", cl.bridge, "up"},
		{"ip", "-n", node.NS, "addr", "add", fmt.Sprintf("%s/%d", node.Addr, cl.prefix), "dev", "eth0"},
		{"ip", "-n", node.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", node.NS, "link", "set", "lo", "up"},
		{"ip", "-n", node.NS, "route", "add", "default", "via", cl.gateway.String()},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	return node, nil
}

// root is where the node's disk is: a path of the node as its disk holds
// it.
func (n *Node) root(p string) string { return filepath.Join(n.Dir, "root", p) }

// prepare writes what the node's disk holds: its role image's and its
// node image's files, the JMX exporter's jar, in tls mode its key and
// certificate as disks installs them, and what systemd-tmpfiles makes at
// boot (the real one, on the node's root). Then it reads the Kafka
// quadlet with podman's converter, and lays out what the container sees.
func (n *Node) prepare() error {
	c := n.model
	role, err := c.RoleImage(n.Role)
	if err != nil {
		return err
	}
	img, err := c.NodeImage(n.Node)
	if err != nil {
		return err
	}
	for _, f := range append(role.Files, img.Files...) {
		if err := writeFile(n.root(f.Path), f.Content, f.Mode.Perm(), 0, 0); err != nil {
			return err
		}
	}
	agent, err := os.ReadFile(n.dist.Agent)
	if err != nil {
		return err
	}
	if err := writeFile(n.root(nodes.JMXAgentPath), agent, 0o644, 0, 0); err != nil {
		return err
	}
	if c.TLS {
		if err := n.InstallCertificate(n.cl.CA, time.Now()); err != nil {
			return err
		}
	}
	if out, err := exec.Command("systemd-tmpfiles", "--create", "--root="+n.root("/"), "kafka-bootc.conf").CombinedOutput(); err != nil {
		return fmt.Errorf("systemd-tmpfiles: %v: %s", err, out)
	}
	if err := n.readContainer(role, img); err != nil {
		return err
	}
	return n.layout()
}

// InstallCertificate issues the node's certificate from ca and writes it,
// with its key and ca's trust, where the node's disk keeps them, with the
// owners and modes that disks gives them.
func (n *Node) InstallCertificate(ca *pki.CA, now time.Time) error {
	certPEM, keyPEM, err := ca.Issue(n.model.NodeIdentity(n.Node, nil, 30), now)
	if err != nil {
		return err
	}
	return n.InstallTLS(pki.Bundle(keyPEM, certPEM), ca.TrustPEM)
}

// InstallTLS writes a node's key and certificate bundle and its trust
// store where the node's disk keeps them. A running Kafka reads them at
// its next start, as on a node.
func (n *Node) InstallTLS(nodePEM, trustPEM []byte) error {
	dirs, files := nodes.NodeTLSFiles(nodePEM, trustPEM)
	for _, d := range dirs {
		mode, _ := strconv.ParseUint(d.Mode, 8, 32)
		if err := os.MkdirAll(n.root(d.Path), os.FileMode(mode)); err != nil {
			return err
		}
	}
	for _, f := range files {
		mode, _ := strconv.ParseUint(f.Mode, 8, 32)
		if err := writeFile(n.root(f.Path), []byte(f.Data), os.FileMode(mode), 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// readContainer reads the Kafka quadlet of the role image with the node
// image's drop-ins, with podman's converter.
func (n *Node) readContainer(role, img nodes.Image) error {
	unit := n.Role.Unit() + ".container"
	dir := "/usr/share/containers/systemd/"
	var base []byte
	var dropins []string
	content := map[string][]byte{}
	for _, f := range append(role.Files, img.Files...) {
		switch {
		case f.Path == dir+unit:
			base = f.Content
		case strings.HasPrefix(f.Path, dir+unit+".d/") && strings.HasSuffix(f.Path, ".conf"):
			dropins = append(dropins, f.Path)
			content[f.Path] = f.Content
		}
	}
	if base == nil {
		return fmt.Errorf("no %s in the role image", unit)
	}
	slices.Sort(dropins)
	var ds [][]byte
	for _, d := range dropins {
		ds = append(ds, content[d])
	}
	ctr, err := ReadContainer(unit, base, ds...)
	if err != nil {
		return err
	}
	n.Ctr = ctr
	return nil
}

// Where the release and the image's default configuration are in the
// container, and the final configuration that the image's start-up
// writes.
const (
	kafkaHome      = "/opt/kafka"
	finalConfigs   = "/opt/kafka/config"
	defaultConfigs = "/etc/kafka/docker"
	mountedConfigs = "/mnt/shared/config"
)

// layout writes ctr/, what the node's Kafka container sees at its
// absolute paths: the secrets, copied with their owners and modes, and
// the mount points of the volumes, of the release and of the final
// configuration. enter.sh binds them over the machine's paths in the
// node's own mount namespace; nothing of the machine's is changed but
// empty directories made as mount points.
func (n *Node) layout() error {
	ctr := filepath.Join(n.Dir, "ctr")
	os.RemoveAll(ctr)
	targets := []string{kafkaHome, defaultConfigs}
	for _, s := range n.Ctr.Secrets {
		b, err := os.ReadFile(n.root(s.Source))
		if err != nil {
			return fmt.Errorf("secret %s: %w", s.Name, err)
		}
		uid, _ := strconv.Atoi(s.UID)
		gid, _ := strconv.Atoi(s.GID)
		mode, _ := strconv.ParseUint(s.Mode, 8, 32)
		if err := writeFile(filepath.Join(ctr, s.Target), b, os.FileMode(mode), uid, gid); err != nil {
			return err
		}
		targets = append(targets, s.Target)
	}
	for _, v := range n.Ctr.Volumes {
		targets = append(targets, v.Container)
	}
	for _, d := range append([]string{finalConfigs}, targets...) {
		if slices.ContainsFunc(n.Ctr.Secrets, func(s Secret) bool { return s.Target == d }) {
			continue
		}
		if err := os.MkdirAll(filepath.Join(ctr, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"config", "docker"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
		if err := os.Chown(filepath.Join(n.Dir, d), appUID, appUID); err != nil {
			return err
		}
	}
	var roots []string
	for _, t := range targets {
		r, err := mountRoot(t)
		if err != nil {
			return err
		}
		if !slices.Contains(roots, r) && !slices.ContainsFunc(roots, func(o string) bool { return strings.HasPrefix(r, o+"/") }) {
			roots = slices.DeleteFunc(roots, func(o string) bool { return strings.HasPrefix(o, r+"/") })
			roots = append(roots, r)
		}
	}
	slices.Sort(roots)
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Enters the node as its Kafka container sees it, then runs the arguments as appuser.\nset -eu\n")
	fmt.Fprintf(&b, "hostname %s\n", shell.Quote(n.Hostname))
	for _, r := range roots {
		fmt.Fprintf(&b, "mount --bind %s %s\n", shell.Quote(filepath.Join(ctr, r)), shell.Quote(r))
	}
	for _, v := range n.Ctr.Volumes {
		fmt.Fprintf(&b, "mount --bind %s %s\n", shell.Quote(n.root(v.Host)), shell.Quote(v.Container))
		if v.ReadOnly {
			fmt.Fprintf(&b, "mount -o remount,bind,ro %s\n", shell.Quote(v.Container))
		}
	}
	fmt.Fprintf(&b, "mount --bind %s %s\n", shell.Quote(n.dist.Dir), kafkaHome)
	fmt.Fprintf(&b, "mount --bind %s %s\n", shell.Quote(filepath.Join(n.Dir, "config")), finalConfigs)
	fmt.Fprintf(&b, "mount --bind %s %s\n", shell.Quote(filepath.Join(n.Dir, "docker")), defaultConfigs)
	fmt.Fprintf(&b, "mount --bind %s /etc/hosts\n", shell.Quote(filepath.Join(n.cl.Dir, "hosts")))
	b.WriteString("cd /\n")
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp"}
	env = append(env, n.Ctr.Env...)
	var quoted []string
	for _, e := range env {
		quoted = append(quoted, shell.Quote(e))
	}
	fmt.Fprintf(&b, "exec setpriv --reuid=%d --regid=%d --clear-groups env -i %s \"$@\"\n", appUID, appUID, strings.Join(quoted, " "))
	if err := os.WriteFile(filepath.Join(n.Dir, "enter.sh"), []byte(b.String()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "launch.sh"), []byte(n.launch()), 0o755)
}

// mountRoot is the directory to bind over for a path of the container:
// the first one on the way that the machine lacks or holds empty, which
// is made as an empty mount point when it is missing.
func mountRoot(p string) (string, error) {
	cur := "/"
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		cur = path.Join(cur, part)
		st, err := os.Stat(cur)
		if errors.Is(err, os.ErrNotExist) {
			return cur, os.MkdirAll(cur, 0o755)
		}
		if err != nil {
			return "", err
		}
		if !st.IsDir() {
			return "", fmt.Errorf("%s: a file of the machine is on the way to %s", cur, p)
		}
		if entries, _ := os.ReadDir(cur); len(entries) == 0 {
			return cur, nil
		}
	}
	return "", fmt.Errorf("%s: the machine holds it already, with content: the harness binds only over empty or missing directories", p)
}

// launch is the container's start, as the apache/kafka image does it:
// the configure script's checks (docker/resources/common-scripts/
// configure: CLUSTER_ID required once KAFKA_PROCESS_ROLES is set; a
// controller refused with KAFKA_ADVERTISED_LISTENERS; KAFKA_LISTENERS
// derived from the advertised ones when unset; an SSL:// advertised
// listener demands JKS keystore variables), then the launch script's
// (docker/jvm/launch): kafka.docker.KafkaDockerWrapper setup, which
// writes the final server.properties from the mounted one and the KAFKA_*
// environment and formats the storage, tolerating "already formatted";
// then kafka-server-start.sh (the harness's, in the release's bin/). A
// unit with a command of its own (Exec=) runs that instead.
func (n *Node) launch() string {
	if len(n.Ctr.Command) > 0 {
		// The unit's own command, which the image's entrypoint runs.
		var argv []string
		for _, a := range n.Ctr.Command {
			argv = append(argv, shell.Quote(a))
		}
		return "#!/bin/sh\n# The unit's command (Exec=), in place of the apache/kafka image's start.\nexec " + strings.Join(argv, " ") + "\n"
	}
	return fmt.Sprintf(`#!/bin/sh
# The start of the apache/kafka image, mirrored by kafka-bootc's harness.
set -u
if [ -n "${KAFKA_PROCESS_ROLES:-}" ]; then
  if [ -z "${CLUSTER_ID:-}" ]; then echo "configure: CLUSTER_ID environment variable not set"; exit 1; fi
  if [ "$KAFKA_PROCESS_ROLES" = controller ] && [ -n "${KAFKA_ADVERTISED_LISTENERS:-}" ]; then
    echo "configure: KAFKA_ADVERTISED_LISTENERS is not supported on a KRaft controller."; exit 1
  fi
fi
if [ -z "${KAFKA_LISTENERS:-}" ] && [ "${KAFKA_PROCESS_ROLES:-}" != controller ] && [ -n "${KAFKA_ADVERTISED_LISTENERS:-}" ]; then
  KAFKA_LISTENERS=$(echo "$KAFKA_ADVERTISED_LISTENERS" | sed -e 's|://[^:]*:|://0.0.0.0:|g'); export KAFKA_LISTENERS
fi
case "${KAFKA_ADVERTISED_LISTENERS:-}" in
  *SSL://*) if [ -z "${KAFKA_SSL_KEYSTORE_FILENAME:-}" ]; then echo "configure: KAFKA_SSL_KEYSTORE_FILENAME environment variable not set"; exit 1; fi ;;
esac
if ! out=$(java -Xmx256M %[1]s -cp '/opt/kafka/libs/*' kafka.docker.KafkaDockerWrapper setup --default-configs-dir %[2]s --mounted-configs-dir %[3]s --final-configs-dir %[4]s 2>&1); then
  echo "$out"
  echo "$out" | grep -qi "already formatted" || exit 1
fi
echo "$out"
exec /opt/kafka/bin/kafka-server-start.sh %[4]s/server.properties
`, LogOptions("tools"), defaultConfigs, mountedConfigs, finalConfigs)
}

// command is argv run in the node: in its network namespace, in a mount
// namespace of its own with the container's files at their paths, as
// appuser.
func (n *Node) command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", n.NS, "unshare", "--uts", "--mount", "--propagation", "private", "sh", filepath.Join(n.Dir, "enter.sh")}, argv...)
	if ctx == nil {
		return exec.Command("ip", args...)
	}
	return exec.CommandContext(ctx, "ip", args...)
}

// Start starts the node's Kafka, as its unit does at boot.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s: Kafka runs already", n.Name)
	}
	log, err := os.OpenFile(filepath.Join(n.Dir, "kafka.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "=== start %s\n", time.Now().Format(time.RFC3339))
	cmd := n.command(nil, "sh", filepath.Join(n.Dir, "launch.sh"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	go func() {
		err := cmd.Wait()
		log.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()
	fmt.Fprintf(n.cl.log, "%s: started Kafka %s (pid %d)\n", n.Name, n.dist.Version, cmd.Process.Pid)
	return nil
}

// Running reports whether the node's Kafka process runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Stop stops the node's Kafka as podman stops its container: SIGTERM,
// then SIGKILL after the unit's StopTimeout (podman's 10 s when unset).
// It returns how long the stop took, and whether it had to kill.
func (n *Node) Stop() (time.Duration, bool) {
	timeout := 10 * time.Second
	if s, err := strconv.Atoi(n.Ctr.StopTimeout); err == nil {
		timeout = time.Duration(s) * time.Second
	}
	return n.stop(syscall.SIGTERM, timeout)
}

// Kill kills the node's Kafka at once, as a power cut does.
func (n *Node) Kill() { n.stop(syscall.SIGKILL, 0) }

func (n *Node) stop(sig syscall.Signal, timeout time.Duration) (time.Duration, bool) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return 0, false
	}
	start := time.Now()
	killed := sig == syscall.SIGKILL
	syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(timeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		killed = true
		<-done
	}
	n.mu.Lock()
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	fmt.Fprintf(n.cl.log, "%s: stopped after %s (killed %v)\n", n.Name, time.Since(start).Round(time.Millisecond), killed)
	return time.Since(start), killed
}

// Restart stops the node's Kafka and starts it again, re-reading its
// files, as a restart of its unit does.
func (n *Node) Restart() error {
	n.Stop()
	if err := n.layout(); err != nil {
		return err
	}
	return n.Start()
}

// Upgrade moves the node onto another rendering of its cluster, as a
// rollout onto a new build does: its Kafka stopped (controlled shutdown),
// the files of its image and its release's jars replaced, its data kept,
// and started again.
func (n *Node) Upgrade(c *nodes.Cluster) error {
	i := slices.IndexFunc(c.Nodes, func(m nodes.Node) bool { return m.Name == n.Name })
	if i < 0 {
		return fmt.Errorf("%s: not a node of the new rendering", n.Name)
	}
	dist, err := Fetch(c.KafkaVersion.String())
	if err != nil {
		return err
	}
	if err := checkAgent(c, dist); err != nil {
		return err
	}
	n.Stop()
	n.model, n.dist, n.Node = c, dist, c.Nodes[i]
	if err := n.prepare(); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	return n.Start()
}

// waitListening waits, at most for d, until the node's Kafka listener
// accepts connections: the node is back in the cluster's service.
func (n *Node) waitListening(d time.Duration) bool {
	addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(n.model.Roles[n.Role].Port))
	for start := time.Now(); time.Since(start) < d && n.Running(); time.Sleep(200 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// Release is the Kafka release the node runs.
func (n *Node) Release() string { return n.dist.Version }

// unitCommand answers a command about the node's Kafka unit as systemd
// and podman do on a node (argv without sudo): "systemctl is-active" of
// the unit, by whether the node's Kafka runs, and "podman exec" of a tool
// in its container. It returns the command's output, its exit code and
// its error; handled is false for any other command.
func (n *Node) unitCommand(ctx context.Context, argv []string) (out []byte, code int, err error, handled bool) {
	unit := n.Role.Unit()
	switch {
	case len(argv) == 3 && argv[0] == "/usr/bin/systemctl" && argv[1] == "is-active" && argv[2] == unit+".service":
		if n.Running() {
			return []byte("active\n"), 0, nil, true
		}
		return []byte("inactive\n"), 3, errors.New("exit status 3"), true
	case len(argv) > 3 && argv[0] == "/usr/bin/podman" && argv[1] == "exec" && argv[2] == unit:
		if !n.Running() {
			return nil, 125, fmt.Errorf("Error: no container with name or ID %q found: no such container", unit), true
		}
		out, err := n.Container(ctx, argv[3:]...)
		if err != nil {
			return out, 1, err, true
		}
		return out, 0, nil, true
	}
	return nil, 0, nil, false
}

// Container runs argv in the node's Kafka container, as podman exec does:
// as appuser, with the container's environment and files. It returns the
// standard output; a failure's error holds the standard error.
func (n *Node) Container(ctx context.Context, argv ...string) ([]byte, error) {
	cmd := n.command(ctx, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %s: %w: %s", n.Name, strings.Join(argv, " "), err, lastLines(stderr.String(), 10))
	}
	return stdout.Bytes(), nil
}

// Log is everything the node's Kafka (and its start) printed.
func (n *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "kafka.log"))
	return string(b)
}

// Tail is the last lines of the node's Kafka log.
func (n *Node) Tail(lines int) string {
	return lastLines(n.Log(), lines) + "\n"
}

func lastLines(s string, k int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > k {
		ls = ls[len(ls)-k:]
	}
	return strings.Join(ls, "\n")
}

// writeFile writes a file and its parents, with the owner and mode given.
func writeFile(p string, content []byte, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, content, mode); err != nil {
		return err
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Chown(p, uid, gid)
}
