package nodes

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"dagger/kafka-bootc/bib"
)

// Role is what a node does in KRaft: broker or controller.
type Role string

// The two roles. A node is one or the other; combined nodes are not built.
const (
	Broker     Role = "broker"
	Controller Role = "controller"
)

// Roles lists the roles in build order.
var Roles = []Role{Broker, Controller}

// ParseRole reads a role name as a user gives it.
func ParseRole(role string) (Role, error) {
	for _, r := range Roles {
		if string(r) == role {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q: must be broker or controller", role)
}

// Unit is the name of the role's image and of its Kafka quadlet
// (kafka-broker, kafka-controller).
func (r Role) Unit() string { return "kafka-" + string(r) }

// Listener is the name of the role's Kafka listener: CONTROLLER on
// controllers; on brokers PLAINTEXT, or BROKER in TLS mode (see
// tlsBrokerListener).
func (c *Cluster) Listener(r Role) string {
	switch {
	case r == Controller:
		return controllerListen
	case c.TLS:
		return tlsBrokerListener
	}
	return plaintextListener
}

// protocol is the security protocol of every listener.
func (c *Cluster) protocol() string {
	if c.TLS {
		return "SSL"
	}
	return "PLAINTEXT"
}

// Cluster is a validated cluster: what Plan derives from a Spec.
type Cluster struct {
	Name   string
	ID     string
	Domain string

	BaseImage     string
	KafkaImage    string
	ExporterImage string
	// KafkaVersion is the Kafka release in KafkaImage: the settings, the
	// tools' options and finalizing an upgrade depend on it.
	KafkaVersion KafkaVersion
	ExporterPort int
	// MetricsPort serves Kafka's JMX metrics; 0 when there is no JMX exporter.
	MetricsPort int
	// JMXExporterURL and JMXExporterSHA256 locate and pin the exporter's
	// jar; empty when there is no JMX exporter.
	JMXExporterURL    string
	JMXExporterSHA256 string

	// TLS is set in TLS mode (the default): mutual TLS on every listener,
	// and authorization.
	TLS bool
	// Dynamic is set for a dynamic quorum (KIP-853): the nodes find the
	// controllers through controller.quorum.bootstrap.servers, and the
	// voters are in the metadata log, where they can change.
	Dynamic bool
	// AdminUser is the client identity that is a super user, in TLS mode.
	AdminUser string

	// SigningPublicKey is the key node images must be signed with, or
	// empty when nodes do not check signatures.
	SigningPublicKey string

	// Roles holds the per-role settings, validated, heap resolved.
	Roles map[Role]RoleSettings
	// Nodes are the brokers, then the controllers, each in name order.
	Nodes []Node

	// Registry is the normalized registry to publish to, or empty.
	Registry string
	Tag      string

	Disk bib.Spec
}

// RoleSettings are a role's validated settings.
type RoleSettings struct {
	MemoryMiB int
	HeapMiB   int
	CPUs      int
	Port      int
	// Settings are the extra Kafka properties, sorted by name.
	Settings []Setting
}

// Setting is one Kafka property.
type Setting struct {
	Name  string
	Value string
}

// Node is one machine of the cluster.
type Node struct {
	// Name is the image and VM name, for example kafka-broker-1.
	Name string
	// Hostname is Name, qualified with the cluster's domain if it has one.
	Hostname string
	Role     Role
	// ID is Kafka's node.id, unique across the cluster.
	ID int
}

// Node finds a node by name.
func (c *Cluster) Node(name string) (Node, error) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name
	}
	return Node{}, fmt.Errorf("node %q: no such node; the cluster has %s", name, strings.Join(names, ", "))
}

// Count returns how many nodes have the role.
func (c *Cluster) Count(r Role) int {
	n := 0
	for _, node := range c.Nodes {
		if node.Role == r {
			n++
		}
	}
	return n
}

// FirstID is the default node id of the role's first node; the others
// follow in order. Each role has a range of its own, so that adding or
// removing a node of one role never renumbers a node of the other: a node
// id is stored in the node's data, and the controllers' ids are in the
// quorum voters of every node.
func (r Role) FirstID() int {
	if r == Controller {
		return 1001
	}
	return 1
}

// Limits on what Plan accepts; they keep a typo from planning a thousand images.
const (
	MaxNodesPerRole = 99
	minMemoryMiB    = 1024
	// maxMemoryMiB is 4 TiB: more than any one VM of a Kafka cluster is
	// given, so that a misplaced digit is caught here, not by a hypervisor
	// that refuses to start the node.
	maxMemoryMiB = 4 << 20
	// maxHeapMiB caps the derived heap: past about 6 GiB Kafka gains more from
	// the page cache than from heap.
	maxHeapMiB = 6144
)

var (
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	clusterName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	propName    = regexp.MustCompile(`^[a-z][a-z0-9]*([._-][a-z0-9]+)*$`)
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Plan validates a Spec and derives the cluster. The error names the field
// and the rule that it breaks.
func Plan(s Spec) (*Cluster, error) {
	if !clusterName.MatchString(s.Name) {
		return nil, fmt.Errorf("cluster name %q: must be lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit", s.Name)
	}
	id := s.ClusterID
	if id == "" {
		id = DeriveClusterID(s.Name)
	} else if err := CheckClusterID(id); err != nil {
		return nil, err
	}
	if s.Domain != "" {
		for _, label := range strings.Split(s.Domain, ".") {
			if !dnsLabel.MatchString(label) {
				return nil, fmt.Errorf("domain %q: label %q is not a DNS label (lower-case letters, digits and '-', 1 to 63 characters)", s.Domain, label)
			}
		}
		if len(s.Domain)+len("kafka-controller-99.") > 253 {
			return nil, fmt.Errorf("domain %q: hostnames would exceed 253 characters", s.Domain)
		}
	}
	if err := CheckBaseImage(s.BaseImage); err != nil {
		return nil, fmt.Errorf("base image: %w", err)
	}
	if err := CheckBoundImage(s.KafkaImage); err != nil {
		return nil, fmt.Errorf("kafka image: %w", err)
	}
	version, err := planKafkaVersion(s.KafkaImage, s.KafkaVersion)
	if err != nil {
		return nil, err
	}
	if err := CheckBoundImage(s.ExporterImage); err != nil {
		return nil, fmt.Errorf("exporter image: %w", err)
	}
	if err := checkPort("exporter port", s.ExporterPort); err != nil {
		return nil, err
	}
	if s.MetricsPort != 0 {
		if err := checkPort("metrics port", s.MetricsPort); err != nil {
			return nil, fmt.Errorf("%w, or 0 to leave the JMX exporter out", err)
		}
		if s.MetricsPort == s.ExporterPort {
			return nil, fmt.Errorf("metrics port %d: clashes with the exporter port", s.MetricsPort)
		}
		if err := checkDownloadURL(s.JMXExporterURL); err != nil {
			return nil, fmt.Errorf("jmx exporter url: %w", err)
		}
		if !sha256Hex.MatchString(s.JMXExporterSHA256) {
			return nil, fmt.Errorf("jmx exporter sha256 %q: must be 64 lower-case hex digits, as sha256sum prints", s.JMXExporterSHA256)
		}
	}

	c := &Cluster{
		Name: s.Name, ID: id, Domain: s.Domain,
		TLS:       s.Security == SecurityTLS,
		BaseImage: s.BaseImage, KafkaImage: s.KafkaImage, KafkaVersion: version, ExporterImage: s.ExporterImage,
		ExporterPort: s.ExporterPort, MetricsPort: s.MetricsPort,
		Roles: map[Role]RoleSettings{},
	}
	if s.MetricsPort != 0 {
		c.JMXExporterURL, c.JMXExporterSHA256 = s.JMXExporterURL, s.JMXExporterSHA256
	}
	counts := map[Role]int{Broker: s.Brokers, Controller: s.Controllers}
	ids := map[Role][]int{Broker: s.BrokerIDs, Controller: s.ControllerIDs}
	specs := map[Role]RoleSpec{Broker: s.Broker, Controller: s.Controller}
	seen := map[int]string{}
	for _, r := range Roles {
		n := counts[r]
		if n < 1 || n > MaxNodesPerRole {
			return nil, fmt.Errorf("%ss: %d: must be from 1 to %d", r, n, MaxNodesPerRole)
		}
		if ids[r] != nil && len(ids[r]) != n {
			return nil, fmt.Errorf("%s ids: %d given for %d %ss: give one per node or none", r, len(ids[r]), n, r)
		}
		for i := 1; i <= n; i++ {
			id := r.FirstID() + i - 1
			if ids[r] != nil {
				id = ids[r][i-1]
			}
			name := fmt.Sprintf("%s-%d", r.Unit(), i)
			if id < 1 || id > math.MaxInt32 {
				return nil, fmt.Errorf("%s ids: %s has id %d: node ids must be from 1 to %d (Kafka's node.id is an int32)", r, name, id, math.MaxInt32)
			}
			if other, dup := seen[id]; dup {
				return nil, fmt.Errorf("%s ids: %s and %s both have id %d: node ids must be unique across brokers and controllers", r, other, name, id)
			}
			seen[id] = name
			host := name
			if s.Domain != "" {
				host += "." + s.Domain
			}
			c.Nodes = append(c.Nodes, Node{Name: name, Hostname: host, Role: r, ID: id})
		}
		rs, err := planRole(r, specs[r], s.ExporterPort, s.MetricsPort)
		if err != nil {
			return nil, err
		}
		if err := checkVersionSettings(r, version, rs.Settings); err != nil {
			return nil, err
		}
		c.Roles[r] = rs
	}
	quorum := s.Quorum
	if quorum == "" {
		quorum = QuorumStatic
		if version.AtLeast(4, 1) {
			quorum = QuorumDynamic
		}
	}
	switch quorum {
	case QuorumStatic:
	case QuorumDynamic:
		if !version.AtLeast(4, 1) {
			return nil, fmt.Errorf("quorum dynamic: needs Kafka 4.1 or later, and the Kafka image is %s; 4.1 is the first release that also moves a static quorum to a dynamic one, so kafka-bootc keeps 3.9 and 4.0 static: use quorum: static, or a newer Kafka image", version)
		}
		c.Dynamic = true
	default:
		return nil, fmt.Errorf("quorum %q: must be %s (voters added and removed on a running cluster, Kafka 4.1 or later), %s (the controllers are fixed voters), or empty (dynamic from Kafka 4.1, static before)", s.Quorum, QuorumDynamic, QuorumStatic)
	}
	switch s.Security {
	case SecurityTLS:
		if err := CheckClientName("admin user", s.AdminUser); err != nil {
			return nil, err
		}
		c.AdminUser = s.AdminUser
		if slices.Contains(s.Disk.Types, "anaconda-iso") {
			return nil, errors.New("disk type anaconda-iso: bootc-image-builder's installer ISO cannot carry files, so it cannot carry a node's TLS key; build disks of another type, or the cluster with security: plaintext")
		}
	case SecurityPlaintext:
	default:
		return nil, fmt.Errorf("security %q: must be %s (mutual TLS and authorization, the default) or %s (no encryption or authentication, for labs)", s.Security, SecurityTLS, SecurityPlaintext)
	}
	if err := c.setRegistry(s.Registry, s.Tag); err != nil {
		return nil, err
	}
	if s.SigningPublicKey != "" {
		if err := CheckSigningPublicKey(s.SigningPublicKey); err != nil {
			return nil, err
		}
		if err := checkSigningRegistry(c.Registry); err != nil {
			return nil, err
		}
		c.SigningPublicKey = s.SigningPublicKey
	}
	if err := s.Disk.Validate(); err != nil {
		return nil, err
	}
	c.Disk = s.Disk
	return c, nil
}

func planRole(r Role, s RoleSpec, exporterPort, metricsPort int) (RoleSettings, error) {
	if s.MemoryMiB < minMemoryMiB || s.MemoryMiB > maxMemoryMiB {
		return RoleSettings{}, fmt.Errorf("%s memory %d MiB: must be from %d MiB to %d MiB (4 TiB)", r, s.MemoryMiB, minMemoryMiB, maxMemoryMiB)
	}
	heap := s.HeapMiB
	switch {
	case heap == 0:
		heap = DeriveHeapMiB(s.MemoryMiB)
	case heap < 256:
		return RoleSettings{}, fmt.Errorf("%s heap %d MiB: must be at least 256 MiB, or 0 to derive it from memory", r, heap)
	case heap > s.MemoryMiB-512:
		return RoleSettings{}, fmt.Errorf("%s heap %d MiB: must leave at least 512 MiB of the node's %d MiB to the OS", r, heap, s.MemoryMiB)
	}
	if s.CPUs < 1 || s.CPUs > 256 {
		return RoleSettings{}, fmt.Errorf("%s cpus %d: must be from 1 to 256", r, s.CPUs)
	}
	if err := checkPort(string(r)+" port", s.Port); err != nil {
		return RoleSettings{}, err
	}
	if s.Port == exporterPort {
		return RoleSettings{}, fmt.Errorf("%s port %d: clashes with the exporter port", r, s.Port)
	}
	if s.Port == metricsPort {
		return RoleSettings{}, fmt.Errorf("%s port %d: clashes with the metrics port", r, s.Port)
	}
	settings, err := parseSettings(r, s.Settings)
	if err != nil {
		return RoleSettings{}, err
	}
	return RoleSettings{MemoryMiB: s.MemoryMiB, HeapMiB: heap, CPUs: s.CPUs, Port: s.Port, Settings: settings}, nil
}

// DeriveHeapMiB gives Kafka half of the node's memory, at most 6 GiB: the
// rest goes to the page cache, which serves Kafka's reads.
func DeriveHeapMiB(memoryMiB int) int {
	return min(memoryMiB/2, maxHeapMiB)
}

// checkDownloadURL accepts an absolute http or https URL that a shell
// command can carry as one word.
func checkDownloadURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path == "" {
		return fmt.Errorf("%q: must be an absolute http or https URL of the file", raw)
	}
	if strings.ContainsFunc(raw, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return fmt.Errorf("%q: must not hold spaces or control characters", raw)
	}
	return nil
}

// sshPort is sshd's, on every node: the disk user's way in, and how
// running's functions reach the node.
const sshPort = 22

func checkPort(field string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%s %d: must be from 1 to 65535", field, p)
	}
	if p == sshPort {
		return fmt.Errorf("%s %d: clashes with sshd, which listens on %d on every node", field, p, sshPort)
	}
	return nil
}

func parseSettings(r Role, raw []string) ([]Setting, error) {
	var out []Setting
	for _, kv := range raw {
		name, value, ok := strings.Cut(kv, "=")
		name = strings.TrimSpace(name)
		if !ok || !propName.MatchString(name) {
			return nil, fmt.Errorf("%s settings: %q: must be name=value with a Kafka property name such as num.partitions", r, kv)
		}
		if owner, managed := managedProperties[name]; managed {
			return nil, fmt.Errorf("%s settings: %s is set by kafka-bootc from %s", r, name, owner)
		}
		if setting := securitySetting(name); setting != "" {
			if setting == name {
				return nil, fmt.Errorf("%s settings: %s: kafka-bootc manages TLS and authorization (every ssl.*, sasl.* and authorizer.* setting, the principal builder, the super users) from the security mode (security) and the cluster CA; this one would change who is trusted or how", r, name)
			}
			return nil, fmt.Errorf("%s settings: %s: Kafka reads it in place of %s, which kafka-bootc manages from the security mode (security) and the cluster CA", r, name, setting)
		}
		if strings.TrimSpace(value) != value || value == "" {
			return nil, fmt.Errorf("%s settings: %s: the value must be non-empty, without leading or trailing spaces", r, name)
		}
		for _, c := range value {
			if c < 0x20 || c == 0x7f || strings.ContainsRune(`%$\"'`+"`", c) {
				return nil, fmt.Errorf("%s settings: %s: the value may not hold control characters or any of %s", r, name, "% $ \\ \" ' `")
			}
		}
		if slices.ContainsFunc(out, func(s Setting) bool { return s.Name == name }) {
			return nil, fmt.Errorf("%s settings: %s is given twice", r, name)
		}
		out = append(out, Setting{name, value})
	}
	slices.SortFunc(out, func(a, b Setting) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeriveClusterID turns a cluster name into a Kafka cluster id: 16 bytes of
// SHA-256, in the 22-character base64url form Kafka uses. The same name gives
// the same id on every node and on every rebuild. Like Kafka's own
// Uuid.randomUuid, it avoids ids that start with '-', which a command line
// would read as an option.
func DeriveClusterID(name string) string {
	for i := 0; ; i++ {
		sum := sha256.Sum256([]byte("kafka-bootc cluster id\x00" + name + "\x00" + strconv.Itoa(i)))
		id := base64.RawURLEncoding.EncodeToString(sum[:16])
		if id[0] != '-' {
			return id
		}
	}
}

// CheckClusterID reports whether id is a cluster id that Kafka accepts.
func CheckClusterID(id string) error {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if len(id) != 22 || err != nil || len(b) != 16 {
		return fmt.Errorf("cluster id %q: must be 22 characters of base64url encoding 16 bytes, as printed by kafka-storage.sh random-uuid", id)
	}
	if id[0] == '-' {
		return fmt.Errorf("cluster id %q: must not start with '-'", id)
	}
	if id == "AAAAAAAAAAAAAAAAAAAAAA" || id == "AAAAAAAAAAAAAAAAAAAAAQ" {
		return fmt.Errorf("cluster id %q: is reserved by Kafka", id)
	}
	return nil
}

// VMs sizes a VM for each of the given nodes from its role.
func (c *Cluster) VMs(ns []Node) []bib.VM {
	vms := make([]bib.VM, len(ns))
	for i, n := range ns {
		rs := c.Roles[n.Role]
		vms[i] = bib.VM{Name: n.Name, MemoryMiB: rs.MemoryMiB, CPUs: rs.CPUs}
	}
	return vms
}
