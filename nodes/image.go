package nodes

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"strconv"

	"dagger/kafka-bootc/quadlets"
)

// Image is the plan of one container image: a role's base image or a node's
// thin layer on top of it. The Dagger module and the rendered tree (with its
// Containerfile) both apply it, in this order: Run, then Files and
// Symlinks, then Check, then Labels.
type Image struct {
	// Name is the image's name: kafka-broker, kafka-broker-1, ...
	Name string
	// From is the image it starts from: the bootc base image for a role,
	// the role image's Name for a node.
	From string
	// Run are the commands that install and configure packages.
	Run []Command
	// Downloads are fetched after Run and checked against their digest.
	Downloads []Download
	// Files and Symlinks are written after Downloads.
	Files    []File
	Symlinks []Symlink
	// Check are the commands that verify the finished image.
	Check []Command
	// Labels are set last.
	Labels []Label
}

// Command is one command of a build, run without a shell.
type Command struct {
	Args []string
	// Cache, if set, is a directory mounted as a cache shared between builds
	// (dnf's package cache), so that it never lands in a layer.
	Cache string
}

// Download is a file of an image fetched at build time.
type Download struct {
	URL string
	// SHA256 is the hex digest the download must have.
	SHA256 string
	Path   string
	Mode   fs.FileMode
}

// File is a regular file of an image, or of a client's directory.
type File struct {
	Path    string
	Content []byte
	Mode    fs.FileMode
	// Private marks a file that holds a private key: no image holds one,
	// and it must not show in any log.
	Private bool
}

// Symlink is a symbolic link at Path pointing to Target.
type Symlink struct {
	Path   string
	Target string
}

// Label is an image label.
type Label struct {
	Name  string
	Value string
}

// Paths of the files that bootc and quadlet read.
const (
	quadletDir     = "/usr/share/containers/systemd"
	boundImagesDir = "/usr/lib/bootc/bound-images.d"
	tmpfilesConf   = "/usr/lib/tmpfiles.d/kafka-bootc.conf"
	// ExporterUnit is the node-exporter quadlet's name, as in the reference.
	ExporterUnit = "prometheus"
	// AutoUpdateTimer is bootc's timer that upgrades and reboots a node on
	// its own clock; kafka-bootc masks it so that upgrades are deliberate.
	AutoUpdateTimer = "bootc-fetch-apply-updates.timer"
	// LabelPrefix starts the labels kafka-bootc sets.
	LabelPrefix = "io.github.kafka-bootc."
	// dropIn is the node's drop-in file name.
	dropIn = "10-node.conf"
)

// boundStorage makes podman look for bound images in bootc's store.
const boundStorage = "--storage-opt=additionalimagestore=/usr/lib/bootc/storage"

// RoleImage plans the base image of a role: packages, firewall, quadlets,
// their bound-image links, the data directory, the JMX exporter and the
// upgrade timer.
func (c *Cluster) RoleImage(r Role) (Image, error) {
	kafka, err := c.kafkaUnit(r).Render()
	if err != nil {
		return Image{}, err
	}
	exporter, err := c.exporterUnit().Render()
	if err != nil {
		return Image{}, err
	}
	kafkaPath := path.Join(quadletDir, r.Unit()+".container")
	exporterPath := path.Join(quadletDir, ExporterUnit+".container")
	files := []File{
		{Path: kafkaPath, Content: kafka, Mode: 0o644},
		{Path: exporterPath, Content: exporter, Mode: 0o644},
		{Path: tmpfilesConf, Content: c.tmpfiles(r), Mode: 0o644},
		{Path: sudoersPath, Content: c.sudoers(r), Mode: 0o440},
	}
	var downloads []Download
	if c.TLS {
		files = append(files,
			File{Path: serverPropertiesSrc, Content: c.serverProperties(), Mode: 0o644},
			File{Path: clientPropertiesSrc, Content: c.clientProperties(), Mode: 0o644},
			File{Path: exporterWebSrc, Content: exporterWebConfig(), Mode: 0o644},
			File{Path: TLSToolPath, Content: []byte(tlsTool), Mode: 0o755})
	}
	signing, err := c.signingFiles()
	if err != nil {
		return Image{}, err
	}
	files = append(files, signing...)
	if r == Controller && c.Dynamic {
		files = append(files, File{Path: controllerStartSrc, Content: []byte(controllerStart), Mode: 0o644},
			File{Path: controllerQuorumSrc, Content: []byte(controllerQuorum), Mode: 0o644})
	}
	if c.MetricsPort != 0 {
		downloads = append(downloads, c.JMXAgent())
		files = append(files, File{Path: jmxConfigPath, Content: []byte(jmxConfig), Mode: 0o644})
	}
	firewall := []string{"firewall-offline-cmd"}
	for _, p := range c.Ports(r) {
		firewall = append(firewall, fmt.Sprintf("--add-port=%d/tcp", p))
	}
	return Image{
		Name: r.Unit(),
		From: c.BaseImage,
		Run: []Command{
			{Args: []string{"dnf", "-y", "install", "firewalld"}, Cache: "/var/cache/dnf"},
			{Args: firewall},
			{Args: []string{"systemctl", "enable", "firewalld.service"}},
			{Args: []string{"systemctl", "mask", AutoUpdateTimer}},
		},
		Downloads: downloads,
		Files:     files,
		Symlinks: []Symlink{
			{Path: path.Join(boundImagesDir, path.Base(kafkaPath)), Target: kafkaPath},
			{Path: path.Join(boundImagesDir, path.Base(exporterPath)), Target: exporterPath},
		},
		Check: []Command{{Args: []string{"bootc", "container", "lint"}}},
		Labels: []Label{
			{"containers.bootc", "1"},
			{"org.opencontainers.image.title", r.Unit()},
			{LabelPrefix + "cluster", c.Name},
			{LabelPrefix + "role", string(r)},
		},
	}, nil
}

// NodeImage plans a node's layer on its role image: the hostname and the
// drop-in with the node's own Kafka settings.
func (c *Cluster) NodeImage(n Node) (Image, error) {
	drop, err := quadlets.DropIn{Env: c.NodeEnv(n)}.Render()
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", n.Name, err)
	}
	return Image{
		Name: n.Name,
		From: n.Role.Unit(),
		Files: []File{
			{Path: "/etc/hostname", Content: []byte(n.Hostname + "\n"), Mode: 0o644},
			{Path: path.Join(quadletDir, n.Role.Unit()+".container.d", dropIn), Content: drop, Mode: 0o644},
		},
		Labels: []Label{
			{"containers.bootc", "1"},
			{"org.opencontainers.image.title", n.Name},
			{LabelPrefix + "cluster", c.Name},
			{LabelPrefix + "role", string(n.Role)},
			{LabelPrefix + "node-id", strconv.Itoa(n.ID)},
		},
	}, nil
}

// Ports are the TCP ports a node of the role opens: Kafka's listener,
// node-exporter and Kafka's metrics. Controllers do not open the broker
// port.
func (c *Cluster) Ports(r Role) []int {
	ports := []int{c.Roles[r].Port, c.ExporterPort}
	if c.MetricsPort != 0 {
		ports = append(ports, c.MetricsPort)
	}
	return ports
}

// kafkaUnit runs Kafka; like every system quadlet it is ordered after
// network-online.target by quadlet itself.
func (c *Cluster) kafkaUnit(r Role) quadlets.Container {
	port := c.Roles[r].Port
	volumes := []string{hostLogDir + ":" + LogDir}
	ports := []string{fmt.Sprintf("%d:%d", port, port)}
	env := c.RoleEnv(r)
	if c.MetricsPort != 0 {
		volumes = append(volumes, c.jmxHostDir()+":"+jmxContainerDir+":ro")
		ports = append(ports, fmt.Sprintf("%d:%d", c.MetricsPort, c.MetricsPort))
		// kafka-server-start.sh passes EXTRA_ARGS to the server's JVM only;
		// in KAFKA_OPTS the agent would also start in every Kafka tool run
		// in the container and fail on its busy port.
		env = append(env, quadlets.Env{Name: "EXTRA_ARGS", Value: fmt.Sprintf(
			"-name kafkaServer -loggc -javaagent:%s/%s=%d:%s/%s",
			jmxContainerDir, path.Base(JMXAgentPath), c.MetricsPort, jmxContainerDir, path.Base(jmxConfigPath))})
	}
	ctr := quadlets.Container{
		Description: "Kafka " + string(r),
		Image:       c.KafkaImage,
		Name:        r.Unit(),
		GlobalArgs:  []string{boundStorage},
		// No :U or :Z: tmpfiles.d made the directory with the right owner
		// and label, and a recursive pass over terabytes at every start
		// would delay it by minutes.
		Volumes:      volumes,
		PublishPorts: ports,
		Env:          env,
		Restart:      "always",
		// The first start formats the log directory; leave it time.
		TimeoutStartSec: "900",
		// A broker's controlled shutdown moves its partitions' leadership
		// away and flushes its logs; killed before the end, it recovers its
		// logs at the next start and its partitions stay under-replicated
		// longer. podman's 10 s is far too short for a busy broker.
		StopTimeout:    strconv.Itoa(KafkaStopSeconds),
		TimeoutStopSec: strconv.Itoa(KafkaStopSeconds + 60),
		WantedBy:       []string{"multi-user.target"},
	}
	if r == Controller && c.Dynamic {
		ctr.Volumes = append(ctr.Volumes, controllerStartHostDir()+":"+controllerStartDir+":ro")
		ctr.Exec = c.controllerStartExec()
	}
	if c.TLS {
		ctr = withSecrets(ctr, KafkaUID, kafkaSecrets())
	}
	return ctr
}

// exporterUnit runs node-exporter with the host's view: host network and
// pid namespaces, the root filesystem read-only at /host, and no SELinux
// separation, which would hide the host's files from it.
func (c *Cluster) exporterUnit() quadlets.Container {
	ctr := quadlets.Container{
		Description:          "Prometheus node exporter",
		Image:                c.ExporterImage,
		Name:                 "node-exporter",
		GlobalArgs:           []string{boundStorage},
		Network:              "host",
		PodmanArgs:           []string{"--pid=host"},
		SecurityLabelDisable: true,
		Volumes:              []string{"/:/host:ro,rslave"},
		Exec:                 []string{"--path.rootfs=/host", fmt.Sprintf("--web.listen-address=:%d", c.ExporterPort)},
		Restart:              "always",
		WantedBy:             []string{"multi-user.target"},
	}
	if c.TLS {
		ctr.Exec = append(ctr.Exec, "--web.config.file="+ctrExporterWebConfig)
		ctr = withSecrets(ctr, exporterUID, exporterSecrets())
	}
	return ctr
}

// tmpfiles creates Kafka's data directory at boot, owned by the image's
// user; systemd-tmpfiles gives new directories the policy's SELinux label.
// It also copies the JMX exporter where a container may read it.
func (c *Cluster) tmpfiles(r Role) []byte {
	b := fmt.Appendf(nil, `# Kafka data, kept across reboots and bootc upgrades.
d /var/srv 0755 root root -
d /var/srv/containers 0755 root root -
d %[1]s 0750 %[3]d %[3]d -
d %[2]s 0750 %[3]d %[3]d -
`, DataDir, hostLogDir, KafkaUID)
	if c.MetricsPort != 0 {
		b = fmt.Appendf(b, `# The JMX exporter, copied from the image once per version: files under
# /var/srv/containers are labelled for containers, files under /usr are not.
d %[1]s 0755 root root -
C %[2]s - - - - %[3]s
`, path.Dir(c.jmxHostDir()), c.jmxHostDir(), path.Dir(jmxConfigPath))
	}
	if r == Controller && c.Dynamic {
		b = fmt.Appendf(b, `# The start of a dynamic quorum's controller, copied from the image once per
# version, for the same reason.
d %[1]s 0755 root root -
C %[2]s - - - - %[3]s
`, path.Dir(controllerStartHostDir()), controllerStartHostDir(), path.Dir(controllerStartSrc))
	}
	return b
}

// JMXAgentPath is where the Prometheus JMX exporter's jar, a Java agent in
// Kafka's JVM, lives in a role's image.
const JMXAgentPath = "/usr/share/kafka-bootc/jmx-exporter/jmx_prometheus_javaagent.jar"

// JMXAgent is the download of the JMX exporter's jar; its URL and digest
// come from the cluster's description.
func (c *Cluster) JMXAgent() Download {
	return Download{URL: c.JMXExporterURL, SHA256: c.JMXExporterSHA256, Path: JMXAgentPath, Mode: 0o644}
}

const (
	jmxConfigPath   = "/usr/share/kafka-bootc/jmx-exporter/kafka.yaml"
	jmxContainerDir = "/opt/kafka-bootc/jmx-exporter"
	// jmxConfig exports every MBean attribute under the exporter's default
	// names, lower-cased.
	jmxConfig = `# Prometheus JMX exporter rules for Kafka, rendered by kafka-bootc.
lowercaseOutputName: true
lowercaseOutputLabelNames: true
rules:
  - pattern: ".*"
`
)

// jmxHostDir is where tmpfiles.d copies the exporter. Its name changes with
// the agent and its config, so an upgrade that changes either gets a fresh
// copy: tmpfiles' C copies only what does not exist yet.
func (c *Cluster) jmxHostDir() string {
	sum := sha256.Sum256([]byte(c.JMXExporterSHA256 + "\x00" + jmxConfig))
	return fmt.Sprintf("/var/srv/containers/kafka-bootc/jmx-exporter-%x", sum[:6])
}
