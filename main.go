// kafka-bootc builds bootable container images (bootc) for a Kafka KRaft
// cluster, one per node, publishes them, and turns them into disk images
// with bootc-image-builder. Kafka and node-exporter run on each node as
// podman quadlets whose images are logically bound to the OS image, so
// that bootc upgrade moves both together.
//
// Package main is only the Dagger part: the cluster model, the plan of
// every image and bootc-image-builder's settings live in the nodes,
// quadlets and bib packages, and are tested without an engine. It is one
// file per capability:
//
//   - main.go: the module's object, its constructor and the cluster it plans;
//   - images.go: the role and node images;
//   - publish.go: build-all, which builds and publishes them;
//   - sign.go: cosign signatures and syft SBOMs of what was published;
//   - disks.go: disks and disk, bootc-image-builder's runs;
//   - disksecrets.go: what a disk carries that no image may;
//   - handoff.go: the registry service that hands images to the builder;
//   - tls.go: the cluster CA, client identities and node certificates;
//   - secrets.go: how private files travel without showing in logs;
//   - registry.go: the registry logins that every pull and push uses;
//   - running.go: the running cluster, over SSH: health and rollout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
)

// KafkaBootc is a Kafka KRaft cluster described once and built as one
// bootc image and one disk per node.
type KafkaBootc struct {
	// Spec is the validated cluster description, as JSON.
	// +private
	Spec string
	// Builder is the bootc-image-builder image.
	// +private
	Builder string
	// JMXExporterJar, when set, is the JMX exporter's jar to use instead
	// of downloading it.
	// +private
	JMXExporterJar *dagger.File
	// AuthAddresses, AuthUsernames and AuthSecrets are the registry logins
	// given with with-registry-auth, one per registry, in order.
	// +private
	AuthAddresses []string
	// +private
	AuthUsernames []string
	// +private
	AuthSecrets []*dagger.Secret
}

// New describes the cluster; a description that breaks a rule is refused.
//
// New describes the cluster: every argument has the reference flow's
// default, and a description that breaks a rule is refused here, before
// anything is built.
func New(
	ctx context.Context,
	// Registry to publish node images to, as <registry>/<node>:<tag>, for
	// example quay.io/me. A bare namespace (me) means quay.io/me. Without
	// it, build-all builds and checks the images without publishing them.
	// +optional
	registry string,
	// Tag that node images are published under and that nodes upgrade from.
	// +default="latest"
	tag string,
	// Cluster name; the cluster id is derived from it, so keep it stable.
	// +default="kafka"
	name string,
	// Cluster id (22 characters of base64url, as kafka-storage.sh
	// random-uuid prints); derived from the name when not given.
	// +optional
	clusterId string,
	// DNS domain that makes node hostnames fully qualified
	// (kafka-broker-1.<domain>).
	// +optional
	domain string,
	// Number of brokers.
	// +default=3
	brokers int,
	// Number of controllers. Kafka 3.8's quorum voters are static: a
	// running cluster cannot take a new controller set online, so choose
	// it before the first start.
	// +default=3
	controllers int,
	// Node ids of the brokers, one per broker (default 1..brokers). Ids
	// never change when either role grows.
	// +optional
	brokerIds []int,
	// Node ids of the controllers, one per controller (default
	// 1001..1000+controllers). A 3+3 cluster first built when controllers
	// were numbered after the brokers keeps its ids with 4,5,6.
	// +optional
	controllerIds []int,
	// bootc base image every node image starts from.
	// +default="quay.io/centos-bootc/centos-bootc:stream9"
	baseImage string,
	// Kafka image, bound to each node image: fully qualified, pinned by a
	// tag other than latest or by digest.
	// +default="docker.io/apache/kafka:3.8.0"
	kafkaImage string,
	// node-exporter image, bound to each node image: fully qualified,
	// pinned by a tag other than latest or by digest.
	// +default="docker.io/prom/node-exporter:v1.8.2"
	exporterImage string,
	// Memory of each broker VM, in MiB.
	// +default=4096
	brokerMemory int,
	// Memory of each controller VM, in MiB.
	// +default=2048
	controllerMemory int,
	// Kafka heap of each broker, in MiB; 0 means half the memory, at most
	// 6144.
	// +optional
	brokerHeap int,
	// Kafka heap of each controller, in MiB; 0 means half the memory, at
	// most 6144.
	// +optional
	controllerHeap int,
	// Virtual CPUs of each broker VM.
	// +default=2
	brokerCpus int,
	// Virtual CPUs of each controller VM.
	// +default=2
	controllerCpus int,
	// Broker client port.
	// +default=9092
	brokerPort int,
	// Controller quorum port.
	// +default=9093
	controllerPort int,
	// node-exporter port on every node.
	// +default=9100
	exporterPort int,
	// Port of the Prometheus JMX exporter, which serves Kafka's own metrics
	// on every node.
	// +default=7071
	metricsPort int,
	// Leave the Prometheus JMX exporter out: Kafka's own metrics are not
	// served, and nothing is downloaded for them.
	// +optional
	noJmxExporter bool,
	// Where the JMX exporter's jar is downloaded from at build time: Maven
	// Central, or a mirror of it (give --jmx-exporter-sha256 with any other
	// version).
	// +default="https://repo1.maven.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/1.0.1/jmx_prometheus_javaagent-1.0.1.jar"
	jmxExporterUrl string,
	// SHA-256 of the JMX exporter's jar, in hex as sha256sum prints it; the
	// build fails on a jar with any other digest, downloaded or given.
	// +default="7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1"
	jmxExporterSha256 string,
	// The JMX exporter's jar as a file, for air-gapped builds: used instead
	// of downloading it, and checked against --jmx-exporter-sha256.
	// +optional
	jmxExporterJar *dagger.File,
	// Extra Kafka properties for brokers, as name=value
	// (num.partitions=6).
	// +optional
	brokerSettings []string,
	// Extra Kafka properties for controllers, as name=value.
	// +optional
	controllerSettings []string,
	// Login user on every disk, a member of wheel.
	// +default="kafka"
	diskUser string,
	// SSH public keys the disk user logs in with ("ssh-ed25519 AAAA...").
	// +optional
	sshKey []string,
	// Minimum size of the root filesystem, in GiB.
	// +default=20
	rootSize int,
	// When more than 0, /var (Kafka's data) gets a partition of its own of
	// at least this many GiB.
	// +optional
	dataSize int,
	// Disk types to build: qcow2, raw, ami, vmdk, vhd, gce, anaconda-iso.
	// +default=["qcow2"]
	diskType []string,
	// Export raw and ami disks as plain image/disk.raw files, as large as
	// the disk. By default they leave as image/disk.raw.tar, a sparse tar
	// archive that holds only the data (tar -xf restores the sparse disk).
	// +optional
	plainRaw bool,
	// Security of the cluster: tls (every listener needs a certificate from
	// the cluster CA, and ACLs decide who may do what) or plaintext (no
	// encryption, authentication or authorization: for labs on a network
	// you trust).
	// +default="tls"
	security string,
	// Client name that is a Kafka super user in tls mode: make its
	// certificate with "client --name <it>".
	// +default="admin"
	adminUser string,
	// Public key that node images are signed with (cosign.pub, as cosign
	// generate-key-pair writes it). Every node image then carries it and a
	// policy under which the node pulls only node images signed with it,
	// and its disk is installed with that policy enforced. Give build-all
	// the matching --signing-key.
	// +optional
	signingPublicKey *dagger.File,
	// bootc-image-builder image. Keep the centos-bootc one:
	// ghcr.io/osbuild/image-builder fails on bound images. Pin it by digest
	// for repeatable disks.
	// +default="quay.io/centos-bootc/bootc-image-builder:latest"
	builderImage string,
) (*KafkaBootc, error) {
	s := nodes.Spec{
		Name: name, ClusterID: clusterId, Domain: domain,
		Brokers: brokers, Controllers: controllers,
		BrokerIDs: brokerIds, ControllerIDs: controllerIds,
		BaseImage: baseImage, KafkaImage: kafkaImage, ExporterImage: exporterImage,
		Broker: nodes.RoleSpec{MemoryMiB: brokerMemory, HeapMiB: brokerHeap, CPUs: brokerCpus,
			Port: brokerPort, Settings: brokerSettings},
		Controller: nodes.RoleSpec{MemoryMiB: controllerMemory, HeapMiB: controllerHeap, CPUs: controllerCpus,
			Port: controllerPort, Settings: controllerSettings},
		ExporterPort: exporterPort, MetricsPort: metricsPort,
		JMXExporterURL: jmxExporterUrl, JMXExporterSHA256: jmxExporterSha256,
		Registry: registry, Tag: tag,
		Security: security, AdminUser: adminUser,
		Disk: bib.Spec{User: diskUser, SSHKeys: sshKey, RootSizeGiB: rootSize, DataSizeGiB: dataSize, Types: diskType, PlainRaw: plainRaw},
	}
	// The Go SDK never sends a zero, so 0 cannot mean "leave it out": a
	// caller in another module could not reach it.
	if metricsPort == 0 {
		return nil, errors.New("metrics port 0: must be from 1 to 65535; --no-jmx-exporter leaves the JMX exporter out")
	}
	if noJmxExporter {
		if jmxExporterJar != nil {
			return nil, errors.New("jmx exporter jar: given with --no-jmx-exporter; give one or the other")
		}
		s.MetricsPort = 0
	}
	if signingPublicKey != nil {
		key, err := signingPublicKey.Contents(ctx)
		if err != nil {
			return nil, fmt.Errorf("signing public key: %w", err)
		}
		s.SigningPublicKey = key
	}
	if _, err := nodes.Plan(s); err != nil {
		return nil, err
	}
	if err := nodes.CheckBaseImage(builderImage); err != nil {
		return nil, fmt.Errorf("builder image: %w", err)
	}
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return &KafkaBootc{Spec: string(spec), Builder: builderImage, JMXExporterJar: jmxExporterJar}, nil
}

// cluster plans the cluster from the stored description.
func (m *KafkaBootc) cluster() (*nodes.Cluster, error) {
	var s nodes.Spec
	if err := json.Unmarshal([]byte(m.Spec), &s); err != nil {
		return nil, fmt.Errorf("stored cluster description: %w", err)
	}
	return nodes.Plan(s)
}

// Config returns every file of every image, to review or to build by hand.
//
// Config returns every file of every image, each image in a directory of
// its own with a Containerfile, plus bootc-image-builder's config.toml: the
// tree to review, or to build with plain podman. It depends on the
// arguments only, so Dagger may keep its result.
func (m *KafkaBootc) Config() (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	dir := dag.Directory()
	for _, e := range tree {
		if e.Target != "" {
			dir = dir.WithSymlink(e.Target, e.Path)
			continue
		}
		dir = dir.WithNewFile(e.Path, string(e.Content), dagger.DirectoryWithNewFileOpts{Permissions: int(e.Mode.Perm())})
	}
	return dir, nil
}
