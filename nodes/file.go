package nodes

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"dagger/kafka-bootc/bib"

	"go.yaml.in/yaml/v3"
)

// FileVersion is the version of the cluster file's format that this
// module reads.
const FileVersion = 1

// ClusterFile is the cluster file, kafka-cluster.yaml: everything that
// describes a cluster, read by every command. Secrets never go in it. Each key's
// comment is its documentation, in the schema and in the file that init
// writes.
type ClusterFile struct {
	// Version of the file's format: 1.
	Version int `yaml:"version" json:"version"`
	// Cluster name; the cluster id is derived from it, so keep it stable.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Cluster id (22 characters of base64url, as kafka-storage.sh
	// random-uuid prints); derived from the name when empty.
	ClusterID string `yaml:"clusterId,omitempty" json:"clusterId,omitempty"`
	// DNS domain that makes node hostnames fully qualified
	// (kafka-broker-1.<domain>).
	Domain string `yaml:"domain,omitempty" json:"domain,omitempty"`
	// Registry that node images are published to, as
	// <registry>/<node>:<tag>, for example quay.io/me (a bare namespace is
	// on quay.io); empty: nothing is published.
	Registry string `yaml:"registry,omitempty" json:"registry,omitempty"`
	// Tag that node images are published under and that nodes upgrade from.
	Tag string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// Security of the cluster: tls (mutual TLS on every listener and ACLs)
	// or plaintext (none of it, for labs on a network you trust).
	Security string `yaml:"security,omitempty" json:"security,omitempty" enum:"tls,plaintext"`
	// Client name that is a Kafka super user in tls mode.
	AdminUser string `yaml:"adminUser,omitempty" json:"adminUser,omitempty"`
	// The images every node is built from.
	Images *FileImages `yaml:"images,omitempty" json:"images,omitempty"`
	// The brokers.
	Brokers *FileRole `yaml:"brokers,omitempty" json:"brokers,omitempty"`
	// The controllers: the voters of the metadata quorum. In a dynamic
	// quorum, changing count (or ids) and running running ... quorum adds
	// or removes voters on the running cluster, one at a time; in a static
	// one, choose them before the first start (see docs/operations.md).
	Controllers *FileRole `yaml:"controllers,omitempty" json:"controllers,omitempty"`
	// How the controllers form the metadata quorum: dynamic (KIP-853:
	// controller.quorum.bootstrap.servers, voters added and removed on a
	// running cluster with running ... quorum; Kafka 4.1 or later) or
	// static (the voters are controller.quorum.voters, fixed for the
	// cluster's life); empty: dynamic from Kafka 4.1, static before. A
	// rollout moves a static cluster to dynamic, never back.
	Quorum string `yaml:"quorum,omitempty" json:"quorum,omitempty" enum:",dynamic,static"`
	// The metrics every node serves.
	Metrics *FileMetrics `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// The disks that bootc-image-builder makes.
	Disk *FileDisk `yaml:"disk,omitempty" json:"disk,omitempty"`
}

// FileImages are the images of a cluster file.
type FileImages struct {
	// bootc base image every node image starts from.
	Base string `yaml:"base,omitempty" json:"base,omitempty"`
	// Kafka image, bound to each node image: fully qualified, pinned by a
	// tag other than latest or by digest. Keep this key: without it the
	// cluster follows kafka-bootc's default, which moves to newer Kafka
	// releases, and a rollout finalizes the move.
	Kafka string `yaml:"kafka,omitempty" json:"kafka,omitempty"`
	// Kafka release in the Kafka image (4.4.0), which decides the settings
	// it is given; empty: the image's tag. Needed for an image pinned by
	// digest alone.
	KafkaVersion string `yaml:"kafkaVersion,omitempty" json:"kafkaVersion,omitempty" pattern:"^([0-9]+\\.[0-9]+\\.[0-9]+)?$"`
	// node-exporter image, bound to each node image, by the same rules.
	Exporter string `yaml:"exporter,omitempty" json:"exporter,omitempty"`
	// bootc-image-builder image; pin it by digest for repeatable disks.
	Builder string `yaml:"builder,omitempty" json:"builder,omitempty"`
}

// FileRole is a role of a cluster file.
type FileRole struct {
	// Number of nodes of the role, 1 to 99.
	Count *int `yaml:"count,omitempty" json:"count,omitempty" minimum:"1" maximum:"99"`
	// Node ids, one per node; by default brokers are 1.., controllers
	// 1001.., so that growing one role never renumbers a node.
	IDs []int `yaml:"ids,omitempty" json:"ids,omitempty"`
	// Memory of each node's VM, in MiB, from 1024 to 4194304 (4 TiB).
	MemoryMiB *int `yaml:"memoryMiB,omitempty" json:"memoryMiB,omitempty" minimum:"1024" maximum:"4194304"`
	// Kafka heap, in MiB; 0: half the memory, at most 6144.
	HeapMiB int `yaml:"heapMiB,omitempty" json:"heapMiB,omitempty"`
	// Virtual CPUs of each node's VM.
	CPUs *int `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	// Kafka's port: the client port on brokers, the quorum port on
	// controllers.
	Port *int `yaml:"port,omitempty" json:"port,omitempty"`
	// Extra Kafka properties, name: value (num.partitions: 6).
	Settings map[string]string `yaml:"settings,omitempty" json:"settings,omitempty"`
}

// FileMetrics are the metrics settings of a cluster file.
type FileMetrics struct {
	// node-exporter's port on every node.
	ExporterPort *int `yaml:"exporterPort,omitempty" json:"exporterPort,omitempty"`
	// The Prometheus JMX exporter, which serves Kafka's own metrics.
	JMXExporter *FileJMXExporter `yaml:"jmxExporter,omitempty" json:"jmxExporter,omitempty"`
}

// FileJMXExporter is the JMX exporter of a cluster file.
type FileJMXExporter struct {
	// Whether Kafka's metrics are served; false downloads nothing for them.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Port it serves on, on every node.
	Port *int `yaml:"port,omitempty" json:"port,omitempty"`
	// Where its jar is downloaded from at build time: Maven Central or a
	// mirror (give its sha256 with any other version).
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// SHA-256 of the jar, in hex as sha256sum prints it.
	SHA256 string `yaml:"sha256,omitempty" json:"sha256,omitempty"`
}

// FileDisk is the disk settings of a cluster file.
type FileDisk struct {
	// Login user on every disk, a member of wheel.
	User string `yaml:"user,omitempty" json:"user,omitempty"`
	// SSH public keys the user logs in with ("ssh-ed25519 AAAA...").
	SSHKeys []string `yaml:"sshKeys,omitempty" json:"sshKeys,omitempty"`
	// Minimum size of the root filesystem, in GiB; with dataSizeGiB at
	// most 16384 (a disk is one file, and 16 TiB is ext4's largest).
	RootSizeGiB *int `yaml:"rootSizeGiB,omitempty" json:"rootSizeGiB,omitempty" minimum:"1" maximum:"16384"`
	// When more than 0, /var (Kafka's data) gets a partition of its own of
	// at least this many GiB.
	DataSizeGiB int `yaml:"dataSizeGiB,omitempty" json:"dataSizeGiB,omitempty" minimum:"0" maximum:"16384"`
	// Disk types to build: qcow2, raw, ami, vmdk, vhd, gce, anaconda-iso.
	Types []string `yaml:"types,omitempty" json:"types,omitempty"`
	// Export raw and ami disks as plain image/disk.raw files instead of
	// sparse archives.
	PlainRaw bool `yaml:"plainRaw,omitempty" json:"plainRaw,omitempty"`
}

// ReadFile reads a cluster file strictly: an unknown key, a wrong type or
// a value that breaks a rule is one error that names the file, the line
// and the rule. Keys left out keep their defaults, so an empty file is
// the default cluster. It returns the cluster and the builder image.
func ReadFile(name string, data []byte) (Spec, string, error) {
	s, builder := Default(), bib.DefaultBuilder
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Spec{}, "", fileError(name, 0, "", err.Error())
	}
	// yaml.Unmarshal reads the first document alone: a second one, whatever
	// it says, would be silently ignored.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first, second yaml.Node
	if dec.Decode(&first) == nil {
		if err := dec.Decode(&second); err == nil {
			return Spec{}, "", fileError(name, second.Line, "", "a second YAML document: the cluster file holds one cluster, in one document; remove the --- and what follows, or merge it into the first")
		}
	}
	if len(root.Content) == 0 {
		// An empty file, or comments alone.
		if _, err := Plan(s); err != nil {
			return Spec{}, "", err
		}
		return s, builder, nil
	}
	doc := root.Content[0]
	if err := checkKeys(name, doc, reflect.TypeOf(ClusterFile{}), ""); err != nil {
		return Spec{}, "", err
	}
	var f ClusterFile
	if err := doc.Decode(&f); err != nil {
		return Spec{}, "", decodeError(name, err)
	}
	if f.Version != FileVersion {
		return Spec{}, "", fileError(name, lineOf(doc, "version"), "version", fmt.Sprintf("%d: this module reads version %d of the cluster file; start from the file that init writes", f.Version, FileVersion))
	}
	f.apply(&s, &builder)
	if _, err := Plan(s); err != nil {
		return Spec{}, "", planError(name, doc, err)
	}
	if err := CheckBaseImage(builder); err != nil {
		return Spec{}, "", fileError(name, lineOf(doc, "images.builder"), "images.builder", "builder image: "+err.Error())
	}
	return s, builder, nil
}

// apply sets on s every value that the file gives.
func (f ClusterFile) apply(s *Spec, builder *string) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.Name, f.Name)
	set(&s.ClusterID, f.ClusterID)
	set(&s.Domain, f.Domain)
	set(&s.Registry, f.Registry)
	set(&s.Tag, f.Tag)
	set(&s.Security, f.Security)
	set(&s.Quorum, f.Quorum)
	set(&s.AdminUser, f.AdminUser)
	if i := f.Images; i != nil {
		set(&s.BaseImage, i.Base)
		set(&s.KafkaImage, i.Kafka)
		set(&s.KafkaVersion, i.KafkaVersion)
		set(&s.ExporterImage, i.Exporter)
		set(builder, i.Builder)
	}
	role := func(r *FileRole, count *int, ids *[]int, rs *RoleSpec) {
		if r == nil {
			return
		}
		setInt(count, r.Count)
		if len(r.IDs) > 0 {
			*ids = r.IDs
		}
		setInt(&rs.MemoryMiB, r.MemoryMiB)
		rs.HeapMiB = r.HeapMiB
		setInt(&rs.CPUs, r.CPUs)
		setInt(&rs.Port, r.Port)
		names := make([]string, 0, len(r.Settings))
		for n := range r.Settings {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			rs.Settings = append(rs.Settings, n+"="+r.Settings[n])
		}
	}
	role(f.Brokers, &s.Brokers, &s.BrokerIDs, &s.Broker)
	role(f.Controllers, &s.Controllers, &s.ControllerIDs, &s.Controller)
	if m := f.Metrics; m != nil {
		setInt(&s.ExporterPort, m.ExporterPort)
		if j := m.JMXExporter; j != nil {
			setInt(&s.MetricsPort, j.Port)
			set(&s.JMXExporterURL, j.URL)
			set(&s.JMXExporterSHA256, j.SHA256)
			if j.Enabled != nil && !*j.Enabled {
				s.MetricsPort = 0
			}
		}
	}
	if d := f.Disk; d != nil {
		set(&s.Disk.User, d.User)
		if len(d.SSHKeys) > 0 {
			s.Disk.SSHKeys = d.SSHKeys
		}
		setInt(&s.Disk.RootSizeGiB, d.RootSizeGiB)
		s.Disk.DataSizeGiB = d.DataSizeGiB
		if d.Types != nil {
			s.Disk.Types = d.Types
		}
		s.Disk.PlainRaw = d.PlainRaw
	}
}

// fileError is an error in a cluster file: its name, the line (0 when it
// is not known) and the key.
func fileError(name string, line int, key, msg string) error {
	where := name
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	if key != "" {
		where += " (" + key + ")"
	}
	return errors.New(where + ": " + msg)
}

// checkKeys refuses a key that the type does not have, and a mapping where
// the type wants a scalar or a list, naming the line and the keys there
// are.
func checkKeys(name string, n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fileError(name, n.Line, path, fmt.Sprintf("must be a mapping of %s", strings.Join(keysOf(t), ", ")))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		field, ok := fieldOf(t, key.Value)
		sub := strings.TrimPrefix(path+"."+key.Value, ".")
		if !ok {
			return fileError(name, key.Line, sub, fmt.Sprintf("unknown key %q; the keys here are %s", key.Value, strings.Join(keysOf(t), ", ")))
		}
		if err := checkKeys(name, value, field.Type, sub); err != nil {
			return err
		}
	}
	return nil
}

// fieldOf finds a struct's field by its YAML key.
func fieldOf(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return k
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		keys = append(keys, yamlKey(t.Field(i)))
	}
	return keys
}

// lineOf finds the line of a key, given as a dotted path, in a document;
// the line of its nearest parent that the file has, or 0.
func lineOf(doc *yaml.Node, path string) int {
	line, _ := findKey(doc, path)
	return line
}

// findKey finds a key, given as a dotted path, in a document: its line,
// or the line of its nearest parent that the file has, or 0; and whether
// the file has the key itself.
func findKey(doc *yaml.Node, path string) (line int, found bool) {
	n := doc
	for _, part := range strings.Split(path, ".") {
		key, value := child(n, part)
		if key == nil {
			return line, false
		}
		line, n = key.Line, value
	}
	return line, true
}

// child finds a key of a mapping and its value; nil when n is not a
// mapping or has no such key.
func child(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

var decodeLine = regexp.MustCompile(`line (\d+): (.*)`)

// decodeError rewrites a YAML type error as the file's: a line each.
func decodeError(name string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fileError(name, 0, "", err.Error())
	}
	var msgs []string
	for _, e := range te.Errors {
		if m := decodeLine.FindStringSubmatch(e); m != nil {
			msgs = append(msgs, name+":"+m[1]+": "+m[2])
		} else {
			msgs = append(msgs, name+": "+e)
		}
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// planFields map the beginning of a rule's error, as Plan and the disk's
// checks word it, to the file's key.
var planFields = []struct{ prefix, key string }{
	{"cluster name", "name"},
	{"cluster id", "clusterId"},
	{"domain", "domain"},
	{"registry", "registry"},
	{"tag", "tag"},
	{"security", "security"},
	{"admin user", "adminUser"},
	{"base image", "images.base"},
	{"kafka image", "images.kafka"},
	{"kafka version", "images.kafkaVersion|images.kafka"},
	{"exporter image", "images.exporter"},
	{"exporter port", "metrics.exporterPort"},
	{"metrics port", "metrics.jmxExporter.port"},
	{"jmx exporter url", "metrics.jmxExporter.url"},
	{"jmx exporter sha256", "metrics.jmxExporter.sha256"},
	{"brokers:", "brokers.count"},
	{"controllers:", "controllers.count"},
	{"broker ids", "brokers.ids|controllers.ids"},
	{"controller ids", "controllers.ids|brokers.ids"},
	{"broker memory", "brokers.memoryMiB"},
	{"controller memory", "controllers.memoryMiB"},
	{"broker heap", "brokers.heapMiB"},
	{"controller heap", "controllers.heapMiB"},
	{"broker cpus", "brokers.cpus"},
	{"controller cpus", "controllers.cpus"},
	{"broker port", "brokers.port"},
	{"controller port", "controllers.port"},
	{"broker settings", "brokers.settings"},
	{"controller settings", "controllers.settings"},
	{"disk user", "disk.user"},
	{"ssh-key", "disk.sshKeys"},
	{"root size", "disk.rootSizeGiB"},
	{"data size", "disk.dataSizeGiB"},
	{"disk type", "disk.types"},
}

// planError names the file, the line and the key of a rule's error.
func planError(name string, doc *yaml.Node, err error) error {
	msg := err.Error()
	for _, f := range planFields {
		if !strings.HasPrefix(msg, f.prefix) {
			continue
		}
		// A rule that two keys break together names the one the file has.
		keys := strings.Split(f.key, "|")
		for _, k := range keys {
			if line, found := findKey(doc, k); line > 0 && (len(keys) == 1 || found) {
				return fileError(name, line, k, msg)
			}
		}
		return fileError(name, lineOf(doc, keys[0]), keys[0], msg)
	}
	return fileError(name, 0, "", msg)
}

// DefaultFile is the cluster file of the default cluster with every key,
// its default and its documentation, as init writes it; FileSchema is the
// file's JSON Schema. Both are generated from the types above
// (go test ./nodes -run ClusterFileDocs -update).
//
//go:embed kafka-cluster.yaml
var DefaultFile []byte

//go:embed kafka-cluster.schema.json
var FileSchema []byte

// FileOf is the cluster file that describes s with builder: every key set,
// the way init writes it.
func FileOf(s Spec, builder string) ClusterFile {
	num := func(v int) *int { return &v }
	enabled := s.MetricsPort != 0
	port := s.MetricsPort
	if !enabled {
		port = Default().MetricsPort
	}
	settings := func(kvs []string) map[string]string {
		m := map[string]string{}
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	role := func(count int, ids []int, r RoleSpec) *FileRole {
		return &FileRole{Count: num(count), IDs: ids, MemoryMiB: num(r.MemoryMiB), HeapMiB: r.HeapMiB,
			CPUs: num(r.CPUs), Port: num(r.Port), Settings: settings(r.Settings)}
	}
	return ClusterFile{
		Version: FileVersion, Name: s.Name, ClusterID: s.ClusterID, Domain: s.Domain,
		Registry: s.Registry, Tag: s.Tag, Security: s.Security, Quorum: s.Quorum, AdminUser: s.AdminUser,
		Images:      &FileImages{Base: s.BaseImage, Kafka: s.KafkaImage, KafkaVersion: s.KafkaVersion, Exporter: s.ExporterImage, Builder: builder},
		Brokers:     role(s.Brokers, s.BrokerIDs, s.Broker),
		Controllers: role(s.Controllers, s.ControllerIDs, s.Controller),
		Metrics: &FileMetrics{ExporterPort: num(s.ExporterPort), JMXExporter: &FileJMXExporter{
			Enabled: &enabled, Port: num(port), URL: s.JMXExporterURL, SHA256: s.JMXExporterSHA256}},
		Disk: &FileDisk{User: s.Disk.User, SSHKeys: s.Disk.SSHKeys, RootSizeGiB: num(s.Disk.RootSizeGiB),
			DataSizeGiB: s.Disk.DataSizeGiB, Types: s.Disk.Types, PlainRaw: s.Disk.PlainRaw},
	}
}
