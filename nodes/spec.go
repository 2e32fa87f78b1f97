// Package nodes is the cluster model of kafka-bootc: a short description of a
// Kafka KRaft cluster in, a validated list of nodes out, with every rule about
// Kafka (ids, listeners, quorum voters, cluster id, heap, data directories)
// and the plan of every image built from it.
//
// Nothing here talks to a container engine; the plan is data that the Dagger
// module applies and that the rendered tree shows.
package nodes

import (
	"dagger/kafka-bootc/bib"
)

// Spec describes a cluster the way a user does. Default returns the
// reference cluster; Plan validates a Spec and derives the cluster from it.
type Spec struct {
	// Name names the cluster; the cluster id is derived from it.
	Name string
	// ClusterID overrides the derived cluster id (22 characters of base64url).
	ClusterID string
	// Domain, when set, makes every hostname fully qualified.
	Domain string

	// Brokers and Controllers are the node counts, each at least 1.
	Brokers     int
	Controllers int
	// BrokerIDs and ControllerIDs override the node ids (brokers 1..N,
	// controllers 1001..1000+M); when set, one per node.
	BrokerIDs     []int
	ControllerIDs []int

	// BaseImage is the bootc base image that every node image starts from.
	BaseImage string
	// KafkaImage and ExporterImage are the logically bound images.
	KafkaImage    string
	ExporterImage string
	// KafkaVersion is the Kafka release in KafkaImage (4.4.0); empty takes
	// it from the image's tag. An image pinned by digest alone needs it.
	KafkaVersion string

	// Broker and Controller size and configure each role.
	Broker     RoleSpec
	Controller RoleSpec

	// ExporterPort is node-exporter's port on every node.
	ExporterPort int
	// MetricsPort is where the Prometheus JMX exporter serves Kafka's own
	// metrics on every node; 0 leaves the exporter out.
	MetricsPort int
	// JMXExporterURL is where the JMX exporter's jar is downloaded from at
	// build time (Maven Central, or a mirror), and JMXExporterSHA256 the
	// hex SHA-256 that it must have, however it reaches the build.
	JMXExporterURL    string
	JMXExporterSHA256 string

	// Security is the security mode: SecurityTLS or SecurityPlaintext.
	Security string
	// Quorum is how the controllers form the metadata quorum:
	// QuorumStatic or QuorumDynamic; empty is dynamic from Kafka 4.1,
	// static before.
	Quorum string
	// AdminUser is the client identity that is a super user in TLS mode.
	AdminUser string

	// SigningPublicKey, when set, is the PEM public key (cosign.pub) that
	// node images must be signed with: every node image carries it and a
	// policy that makes the node enforce it.
	SigningPublicKey string

	// Registry is where node images are published, as
	// <registry>/<node>:<tag>; empty means nothing is published. A bare
	// name ("me") is a quay.io namespace.
	Registry string
	// Tag is the tag nodes are published under and upgrade from.
	Tag string

	// Disk holds the settings for bootc-image-builder.
	Disk bib.Spec
}

// RoleSpec is what can be set per role.
type RoleSpec struct {
	// MemoryMiB is the memory of each node of the role.
	MemoryMiB int
	// HeapMiB is Kafka's heap; 0 derives it from MemoryMiB.
	HeapMiB int
	// CPUs is the number of virtual CPUs of each node.
	CPUs int
	// Port is Kafka's listener port: the client port on brokers, the quorum
	// port on controllers.
	Port int
	// Settings are extra Kafka properties as "name=value", for example
	// "num.partitions=6".
	Settings []string
}

// Default image references, as in the reference flow.
const (
	DefaultBaseImage     = "quay.io/centos-bootc/centos-bootc:stream9"
	DefaultKafkaImage    = "docker.io/apache/kafka:4.4.0"
	DefaultExporterImage = "docker.io/prom/node-exporter:v1.8.2"
	// DefaultJMXExporterURL is the Prometheus JMX exporter 1.0.1, the last
	// release on Maven Central, and DefaultJMXExporterSHA256 its digest.
	DefaultJMXExporterURL    = "https://repo1.maven.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/1.0.1/jmx_prometheus_javaagent-1.0.1.jar"
	DefaultJMXExporterSHA256 = "7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1"
)

// Default returns the reference cluster: 3 brokers and 3 controllers named
// kafka-broker-1..3 and kafka-controller-1..3, node ids 1..3 and
// 1001..1003.
func Default() Spec {
	return Spec{
		Name:              "kafka",
		Brokers:           3,
		Controllers:       3,
		BaseImage:         DefaultBaseImage,
		KafkaImage:        DefaultKafkaImage,
		ExporterImage:     DefaultExporterImage,
		Broker:            RoleSpec{MemoryMiB: 4096, CPUs: 2, Port: 9092},
		Controller:        RoleSpec{MemoryMiB: 2048, CPUs: 2, Port: 9093},
		ExporterPort:      9100,
		MetricsPort:       7071,
		JMXExporterURL:    DefaultJMXExporterURL,
		JMXExporterSHA256: DefaultJMXExporterSHA256,
		Tag:               "latest",
		Security:          SecurityTLS,
		AdminUser:         DefaultAdminUser,
		Disk:              bib.DefaultSpec(),
	}
}
