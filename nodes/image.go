package nodes

import (
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
	// Files and Symlinks are written after Run.
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

// File is a regular file of an image.
type File struct {
	Path    string
	Content []byte
	Mode    fs.FileMode
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
// their bound-image links, the data directory and the upgrade timer.
func (c *Cluster) RoleImage(r Role) (Image, error) {
	kafka, err := c.kafkaUnit(r).Render()
	if err != nil {
		return Image{}, err
	}
	exporter, err := c.exporterUnit().Render()
	if err != nil {
		return Image{}, err
	}
	firewall := []string{"firewall-offline-cmd"}
	for _, p := range c.Ports(r) {
		firewall = append(firewall, fmt.Sprintf("--add-port=%d/tcp", p))
	}
	kafkaPath := path.Join(quadletDir, r.Unit()+".container")
	exporterPath := path.Join(quadletDir, ExporterUnit+".container")
	return Image{
		Name: r.Unit(),
		From: c.BaseImage,
		Run: []Command{
			{Args: []string{"dnf", "-y", "install", "firewalld"}, Cache: "/var/cache/dnf"},
			{Args: firewall},
			{Args: []string{"systemctl", "enable", "firewalld.service"}},
			{Args: []string{"systemctl", "mask", AutoUpdateTimer}},
		},
		Files: []File{
			{Path: kafkaPath, Content: kafka, Mode: 0o644},
			{Path: exporterPath, Content: exporter, Mode: 0o644},
			{Path: tmpfilesConf, Content: c.tmpfiles(), Mode: 0o644},
		},
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

// Ports are the TCP ports a node of the role opens: Kafka's listener and
// node-exporter. Controllers do not open the broker port.
func (c *Cluster) Ports(r Role) []int {
	return []int{c.Roles[r].Port, c.ExporterPort}
}

// kafkaUnit runs Kafka; like every system quadlet it is ordered after
// network-online.target by quadlet itself.
func (c *Cluster) kafkaUnit(r Role) quadlets.Container {
	port := c.Roles[r].Port
	return quadlets.Container{
		Description: "Kafka " + string(r),
		Image:       c.KafkaImage,
		Name:        r.Unit(),
		GlobalArgs:  []string{boundStorage},
		// No :U or :Z: tmpfiles.d made the directory with the right owner
		// and label, and a recursive pass over terabytes at every start
		// would delay it by minutes.
		Volumes:      []string{hostLogDir + ":" + LogDir},
		PublishPorts: []string{fmt.Sprintf("%d:%d", port, port)},
		Env:          c.RoleEnv(r),
		Restart:      "always",
		// The first start formats the log directory; leave it time.
		TimeoutStartSec: "900",
		WantedBy:        []string{"multi-user.target"},
	}
}

// exporterUnit runs node-exporter with the host's view: host network and
// pid namespaces, the root filesystem read-only at /host, and no SELinux
// separation, which would hide the host's files from it.
func (c *Cluster) exporterUnit() quadlets.Container {
	return quadlets.Container{
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
}

// tmpfiles creates Kafka's data directory at boot, owned by the image's
// user; systemd-tmpfiles gives new directories the policy's SELinux label.
func (c *Cluster) tmpfiles() []byte {
	return fmt.Appendf(nil, `# Kafka data, kept across reboots and bootc upgrades.
d /var/srv 0755 root root -
d /var/srv/containers 0755 root root -
d %[1]s 0750 %[3]d %[3]d -
d %[2]s 0750 %[3]d %[3]d -
`, DataDir, hostLogDir, KafkaUID)
}
