// kafka-bootc builds bootable container images (bootc) for a Kafka KRaft
// cluster, one per node, publishes them, and turns them into disk images
// with bootc-image-builder. Kafka and node-exporter run on each node as
// podman quadlets whose images are logically bound to the OS image, so
// that bootc upgrade moves both together.
//
// This file is only the Dagger part: the cluster model, the plan of every
// image and bootc-image-builder's settings live in the nodes, quadlets and
// bib packages, and are tested without an engine.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
	"dagger/kafka-bootc/remote"
	"dagger/kafka-bootc/rollout"

	"github.com/sourcegraph/conc/pool"
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
}

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

// Ca makes a new cluster CA: ca.crt, its certificate, and ca.key, its
// private key (PKCS#8 PEM). Run it once per cluster and keep ca.key safe:
// disks and client need it to issue certificates, and no image holds it.
// "ca -o ./ca" writes both.
//
// Never cached: every call makes a new key, and a kept result would hand
// the same CA to every cluster described alike.
// +cache="never"
func (m *KafkaBootc) Ca(
	// Validity of the CA certificate, in days. Every node and client
	// certificate must expire before it does.
	// +default=3650
	days int,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	cert, key, err := pki.NewCA("kafka-bootc CA of cluster "+c.Name, days, time.Now())
	if err != nil {
		return nil, err
	}
	return withFiles(dag.Directory(), []nodes.File{
		{Path: "ca.crt", Content: cert, Mode: 0o644},
		{Path: "ca.key", Content: key, Mode: 0o600, Private: true},
	}), nil
}

// keyImage copies private files into a directory. A file made with
// withNewFile shows its contents in Dagger's progress output and traces;
// one copied from a mounted secret shows only the secret's name.
const keyImage = "docker.io/library/debian:bookworm"

// withFiles adds files to a directory, the private ones by way of a secret.
func withFiles(dir *dagger.Directory, files []nodes.File) *dagger.Directory {
	for _, f := range files {
		opts := dagger.DirectoryWithNewFileOpts{Permissions: int(f.Mode.Perm())}
		if !f.Private {
			dir = dir.WithNewFile(f.Path, string(f.Content), opts)
			continue
		}
		copied := dag.Container().From(keyImage).
			WithMountedSecret("/private", secretOf("kafka-bootc-private", f.Content)).
			WithExec([]string{"cp", "/private", "/copy"}).
			File("/copy")
		dir = dir.WithFile(f.Path, copied, dagger.DirectoryWithFileOpts{Permissions: int(f.Mode.Perm())})
	}
	return dir
}

// secretOf makes a secret of contents, named by prefix and the contents'
// digest: a session may make several from one place (a disk per node, a
// key per client), and Dagger tells secrets apart by name.
func secretOf(prefix string, contents []byte) *dagger.Secret {
	sum := sha256.Sum256(contents)
	return dag.SetSecret(fmt.Sprintf("%s-%x", prefix, sum[:8]), string(contents))
}

// Client issues a client identity signed by the cluster CA, as a directory
// to use at once: client.key (PKCS#8 PEM) and client.crt, ca.crt,
// client.properties for Kafka's tools (--command-config), and kcat.sh,
// which runs kcat with them. The name is the client's Kafka principal
// (User:<name>), which ACLs name; the admin user's is a super user.
//
// Never cached: every call makes a new key.
// +cache="never"
func (m *KafkaBootc) Client(
	ctx context.Context,
	// The client's name, its principal: lower-case letters, digits, '.',
	// '_' and '-'.
	name string,
	// The cluster CA's certificate, ca.crt as the ca function writes it.
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key.
	caKey *dagger.Secret,
	// Validity of the client certificate, in days.
	// +default=365
	days int,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	if !c.TLS {
		return nil, errors.New("client: the cluster is built with --security plaintext, whose listeners take no certificates")
	}
	if err := nodes.CheckClientName("client name", name); err != nil {
		return nil, err
	}
	ca, err := loadCA(ctx, caCert, caKey)
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue(nodes.ClientIdentity(name, days), time.Now())
	if err != nil {
		return nil, err
	}
	return withFiles(dag.Directory(), c.ClientFiles(name, cert, key, ca.CertPEM)), nil
}

// Base returns a role's base image, built once and shared by every node of
// the role: packages, firewall, quadlets, bound-image links, data directory,
// the upgrade timer masked, and checked with bootc container lint.
// Kept for one session only: it starts from the base image's tag, which
// moves with every update of the base.
// +cache="session"
func (m *KafkaBootc) Base(
	// Role: broker or controller.
	role string,
) (*dagger.Container, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	r, err := nodes.ParseRole(role)
	if err != nil {
		return nil, err
	}
	return m.base(c, r, nil)
}

// base builds a role's base image; registry, when set, is a registry
// service that serves the images on the cluster registry's host.
func (m *KafkaBootc) base(c *nodes.Cluster, r nodes.Role, registry *dagger.Service) (*dagger.Container, error) {
	img, err := c.RoleImage(r)
	if err != nil {
		return nil, err
	}
	var from dagger.ContainerFromOpts
	if registry != nil && c.OnRegistryHost(img.From) {
		from.RegistryService = registry
	}
	given := map[string]*dagger.File{}
	if m.JMXExporterJar != nil {
		given[nodes.JMXAgentPath] = m.JMXExporterJar
	}
	return apply(dag.Container().From(img.From, from), img, given), nil
}

// NodeImage returns a node's image: its role's base image plus one thin
// layer with the hostname and the node's Kafka settings. Open a shell in it
// with "node-image --name kafka-broker-1 terminal". (Not named "node":
// Dagger v0.21's CLI loads file arguments through a core field of that
// name, which a module function called node hides.) Kept for one session
// only: it starts from the base image's tag, which moves.
// +cache="session"
func (m *KafkaBootc) NodeImage(
	// Node name, for example kafka-broker-1 or kafka-controller-3.
	name string,
) (*dagger.Container, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	n, err := c.Node(name)
	if err != nil {
		return nil, err
	}
	return m.node(c, n, nil)
}

func (m *KafkaBootc) node(c *nodes.Cluster, n nodes.Node, registry *dagger.Service) (*dagger.Container, error) {
	base, err := m.base(c, n.Role, registry)
	if err != nil {
		return nil, err
	}
	img, err := c.NodeImage(n)
	if err != nil {
		return nil, err
	}
	return apply(base, img, nil), nil
}

// apply builds an image plan on a container, in the plan's order. A
// download whose path is in given takes that file instead, checked against
// the download's digest all the same.
func apply(ctr *dagger.Container, img nodes.Image, given map[string]*dagger.File) *dagger.Container {
	run := func(ctr *dagger.Container, cmds []nodes.Command) *dagger.Container {
		for _, cmd := range cmds {
			if cmd.Cache != "" {
				// Keyed by base image, so two distributions never share one.
				key := "kafka-bootc" + strings.ReplaceAll(cmd.Cache, "/", "-") + "-" + img.From
				ctr = ctr.WithMountedCache(cmd.Cache, dag.CacheVolume(key),
					dagger.ContainerWithMountedCacheOpts{Sharing: dagger.CacheSharingModeLocked})
			}
			ctr = ctr.WithExec(cmd.Args)
			if cmd.Cache != "" {
				ctr = ctr.WithoutMount(cmd.Cache)
			}
		}
		return ctr
	}
	ctr = run(ctr, img.Run)
	for _, d := range img.Downloads {
		opts := dagger.ContainerWithFileOpts{Permissions: int(d.Mode.Perm())}
		if file, ok := given[d.Path]; ok {
			ctr = ctr.WithFile(d.Path, file, opts).WithExec(d.Check())
			continue
		}
		ctr = ctr.WithFile(d.Path, dag.HTTP(d.URL, dagger.HTTPOpts{Checksum: "sha256:" + d.SHA256}), opts)
	}
	for _, f := range img.Files {
		ctr = ctr.WithNewFile(f.Path, string(f.Content), dagger.ContainerWithNewFileOpts{Permissions: int(f.Mode.Perm())})
	}
	for _, l := range img.Symlinks {
		ctr = ctr.WithSymlink(l.Target, l.Path)
	}
	ctr = run(ctr, img.Check)
	for _, l := range img.Labels {
		ctr = ctr.WithLabel(l.Name, l.Value)
	}
	return ctr
}

// BuildAll builds every node image concurrently and publishes each to
// <registry>/<node>:<tag>: first one node, then the first of the other
// role, then all the others at once, so that the registry receives each
// shared layer once and later pushes mount it. It returns one line per
// node with the published reference pinned by digest: what nodes will
// run, whatever the tag later points to. Without a registry it builds and
// checks every image and says that nothing was published. Every failing
// node is reported, not only the first. With --signing-key it signs each
// published digest with cosign and attaches an SBOM (SPDX, from syft) as a
// signed attestation, and says so on the node's line.
//
// Never cached: it writes to a registry, which may have lost an image
// since the last run, and it starts from tags that move. Reruns stay cheap
// all the same: unchanged layers come from Dagger's layer cache, and the
// registry is only asked whether it has them.
// +cache="never"
func (m *KafkaBootc) BuildAll(
	ctx context.Context,
	// Registry user name; give it with --password.
	// +optional
	username string,
	// Registry password or token, for example env:QUAY_TOKEN.
	// +optional
	password *dagger.Secret,
	// A registry running as a Dagger service that stands in for the
	// registry's host: node images are published to it, and a base image
	// on that host is pulled from it (used by tests). Give --registry as
	// localhost:PORT/NAMESPACE: the service takes over the host name only,
	// and Dagger speaks plain HTTP to localhost alone.
	// +optional
	registryService *dagger.Service,
	// cosign private key that signs every published digest, for example
	// env:COSIGN_KEY (cosign.key, as cosign generate-key-pair writes it). The
	// signatures go next to the images, where podman, skopeo and bootc look
	// for them.
	// +optional
	signingKey *dagger.Secret,
	// Password of --signing-key, for example env:COSIGN_PASSWORD; leave it
	// out for a key without one.
	// +optional
	signingPassword *dagger.Secret,
	// During a key rotation: the public key that the running nodes trust
	// now (old.pub), while --signing-public-key is the new one that the
	// images carry. --signing-key must then be the old private key, so that
	// the nodes take the images that bring them the new key.
	// +optional
	trustedPublicKey *dagger.File,
) (string, error) {
	c, err := m.cluster()
	if err != nil {
		return "", err
	}
	if (username == "") != (password == nil) {
		return "", errors.New("registry credentials: give both --username and --password, or neither")
	}
	if c.Registry == "" && password != nil {
		return "", errors.New("registry credentials: given without --registry; there is nowhere to publish")
	}
	var sign *signer
	switch {
	case signingKey == nil && signingPassword != nil:
		return "", errors.New("signing password: given without --signing-key")
	case signingKey != nil && c.Registry == "":
		return "", errors.New("signing key: given without --registry: only published images are signed")
	case trustedPublicKey != nil && (signingKey == nil || c.SigningPublicKey == ""):
		return "", errors.New("trusted public key: it names the key the nodes trust during a rotation; give it with --signing-key and --signing-public-key")
	case signingKey != nil:
		// The nodes take only images signed with the key they trust: the
		// images' own key, or during a rotation the one before it.
		trusted := c.SigningPublicKey
		if trustedPublicKey != nil {
			if trusted, err = trustedPublicKey.Contents(ctx); err != nil {
				return "", fmt.Errorf("trusted public key: %w", err)
			}
			if err := nodes.CheckSigningPublicKey(trusted); err != nil {
				return "", fmt.Errorf("trusted %w", err)
			}
		}
		// Checked before anything is built or published.
		if sign, err = newSigner(ctx, c, trusted, signingKey, signingPassword, username, password, registryService); err != nil {
			return "", err
		}
	}
	// Every node is built at once; the publishes follow in waves, so that
	// the registry receives each layer once (see nodes.PublishWaves).
	// Results go by index: pools finish in any order.
	ctrs := make([]*dagger.Container, len(c.Nodes))
	errs := make([]error, len(c.Nodes))
	lines := make([]string, len(c.Nodes))
	index := map[string]int{}
	built := pool.New()
	for i, n := range c.Nodes {
		index[n.Name] = i
		built.Go(func() {
			ctrs[i], errs[i] = m.node(c, n, registryService)
			if errs[i] == nil {
				ctrs[i], errs[i] = ctrs[i].Sync(ctx)
				lines[i] = n.Name + " built"
			}
		})
	}
	built.Wait()
	if c.Registry != "" {
		for _, wave := range c.PublishWaves() {
			published := pool.New()
			for _, n := range wave {
				i := index[n.Name]
				if errs[i] != nil {
					continue
				}
				published.Go(func() {
					ctr := ctrs[i]
					if password != nil {
						ctr = ctr.WithRegistryAuth(c.Host(), username, password)
					}
					ref, err := ctr.Publish(ctx, c.Ref(n), dagger.ContainerPublishOpts{RegistryService: registryService})
					if err != nil {
						errs[i] = fmt.Errorf("publish %s: %w", c.Ref(n), err)
						return
					}
					lines[i] = n.Name + " " + ref
					if sign != nil {
						if errs[i] = sign.signAndAttest(ctx, ref, ctrs[i]); errs[i] == nil {
							lines[i] += " signed, SBOM attached"
						}
					}
				})
			}
			published.Wait()
		}
	}
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", c.Nodes[i].Name, err))
		}
	}
	if err := errors.Join(failed...); err != nil {
		return "", err
	}
	if c.Registry == "" {
		lines = append(lines, "nothing was published: no --registry given")
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// Disks builds a disk for every node with bootc-image-builder, a few at a
// time, and returns them as <node>/qcow2/disk.qcow2 (and the other types'
// paths) with bib's manifests, plus start-vms.sh and remove-vms.sh to run
// the cluster with virt-install. Each disk installs its node image with the
// registry reference as upgrade source.
//
// Kept for one session only: the disks start from the base, bound and
// builder images' tags, which move. A rerun with nothing changed reuses
// the disks from Dagger's layer cache, except in tls mode: each run gives
// each disk a new key and certificate.
// +cache="session"
func (m *KafkaBootc) Disks(
	ctx context.Context,
	// Password hash for the disk user (a crypt(3) hash, as openssl passwd
	// -6 prints), for example env:KAFKA_PASSWORD_HASH. SSH keys are
	// preferred.
	// +optional
	password *dagger.Secret,
	// How many disks to build at once; each takes gigabytes of disk space.
	// +default=2
	parallel int,
	// The cluster CA's certificate, ca.crt as the ca function writes it:
	// each disk gets a key and a certificate of its own, signed by it.
	// Required in tls mode.
	// +optional
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key. It signs
	// the node certificates, and goes nowhere else.
	// +optional
	caKey *dagger.Secret,
	// Validity of each node certificate, in days.
	// +default=365
	certDays int,
	// An extra name for a node's certificate, as NODE=NAME, where NAME is a
	// DNS name or an IP address (repeatable), for example
	// kafka-broker-1=10.0.0.11.
	// +optional
	extraName []string,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	if parallel < 1 {
		return nil, fmt.Errorf("parallel %d: must be at least 1", parallel)
	}
	if c.Registry == "" {
		return nil, nodes.ErrNoRegistry
	}
	issuer, err := newIssuer(ctx, c, caCert, caKey, certDays, extraName)
	if err != nil {
		return nil, err
	}
	dirs := make([]*dagger.Directory, len(c.Nodes))
	h := newHandoff()
	p := pool.New().WithContext(ctx).WithMaxGoroutines(parallel)
	for i, n := range c.Nodes {
		p.Go(func(ctx context.Context) error {
			dir, err := m.disk(ctx, c, n, "", password, issuer, h)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			// Build it here, so that no more than parallel run at once.
			dirs[i], err = dir.Sync(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	out := dag.Directory()
	for i, n := range c.Nodes {
		out = out.WithDirectory(n.Name, dirs[i])
	}
	return withVMScripts(out, c, c.Nodes)
}

// Disk builds one node's disk with bootc-image-builder and returns it laid
// out as <node>/qcow2/disk.qcow2 (and the other types' paths), plus
// scripts to start and remove the VM.
//
// Kept for one session only, as disks: the base, bound and builder images'
// tags move.
// +cache="session"
func (m *KafkaBootc) Disk(
	ctx context.Context,
	// Node name, for example kafka-broker-1.
	node string,
	// The published node image to install, pinned by digest, as build-all
	// printed it. When given, the disk holds exactly that image instead of a
	// rebuild.
	// +optional
	image string,
	// Password hash for the disk user (a crypt(3) hash), for example
	// env:KAFKA_PASSWORD_HASH.
	// +optional
	password *dagger.Secret,
	// The cluster CA's certificate (ca.crt): the disk gets a new key and
	// certificate signed by it, which is also how a node's certificate is
	// renewed. Required in tls mode.
	// +optional
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key.
	// +optional
	caKey *dagger.Secret,
	// Validity of the node certificate, in days.
	// +default=365
	certDays int,
	// An extra name for the node's certificate, as NODE=NAME, where NAME is
	// a DNS name or an IP address (repeatable).
	// +optional
	extraName []string,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	n, err := c.Node(node)
	if err != nil {
		return nil, err
	}
	issuer, err := newIssuer(ctx, c, caCert, caKey, certDays, extraName)
	if err != nil {
		return nil, err
	}
	dir, err := m.disk(ctx, c, n, image, password, issuer, newHandoff())
	if err != nil {
		return nil, err
	}
	return withVMScripts(dag.Directory().WithDirectory(n.Name, dir), c, []nodes.Node{n})
}

// disk runs bootc-image-builder for a node: the node image (built, or the
// published one) and both bound images go into bib's storage under the
// references that bib and bootc look for. The bound images and the bootc
// base image come from the seed, loaded once for every node. In tls mode
// the issuer makes the node's key and certificate, which reach bib inside
// its config, a secret, and leave only inside the disk.
func (m *KafkaBootc) disk(ctx context.Context, c *nodes.Cluster, n nodes.Node, published string, password *dagger.Secret, issuer *issuer, h *handoff) (*dagger.Directory, error) {
	spec := c.Disk
	if password != nil {
		hash, err := password.Plaintext(ctx)
		if err != nil {
			return nil, err
		}
		spec.PasswordHash = strings.TrimSpace(hash)
		if err := spec.Validate(); err != nil {
			return nil, err
		}
	}
	if err := spec.CheckLogin(); err != nil {
		return nil, err
	}
	run, archives, err := m.diskRun(ctx, c, n, published, h)
	if err != nil {
		return nil, err
	}
	config := spec.Config()
	var key bib.Secret
	if issuer != nil {
		nodePEM, keyPEM, err := issuer.node(n)
		if err != nil {
			return nil, fmt.Errorf("node certificate: %w", err)
		}
		key = bib.NewSecret(keyPEM)
		config.Customizations.Directories, config.Customizations.Files = nodes.NodeTLSFiles(nodePEM, issuer.ca.CertPEM)
	}
	cfg, err := config.TOML()
	if err != nil {
		return nil, err
	}
	builder := m.builder("kafka-bootc-bib-storage-"+n.Name).
		WithMountedCache(bib.StoreDir, dag.CacheVolume("kafka-bootc-bib-store")).
		WithMountedCache(bib.RPMMDDir, dag.CacheVolume("kafka-bootc-bib-rpmmd")).
		WithDirectory(bib.OutputDir, dag.Directory())
	if password != nil || issuer != nil {
		// The node's key must stay out of every log and layer, and a
		// password hash is nobody's business either.
		builder = builder.WithMountedSecret(bib.ConfigPath, secretOf("kafka-bootc-bib-config-"+n.Name, cfg))
	} else {
		builder = builder.WithNewFile(bib.ConfigPath, string(cfg))
	}
	builder = h.bind(builder, run.Images...).WithMountedDirectory(bib.SeedDir, m.seed(run.Seed, archives, h))
	out := runScript(builder, run.Script()).Directory(bib.OutputDir)
	if issuer == nil {
		return out, nil
	}
	return scrubManifests(ctx, out, key)
}

// scrubManifests removes the node's key from bib's manifests, which copy
// the config's files: the key leaves the builder only inside the disk.
func scrubManifests(ctx context.Context, out *dagger.Directory, key bib.Secret) (*dagger.Directory, error) {
	manifests, err := out.Glob(ctx, "manifest-*.json")
	if err != nil {
		return nil, err
	}
	for _, name := range manifests {
		text, err := out.File(name).Contents(ctx)
		if err != nil {
			return nil, err
		}
		scrubbed, _, err := bib.Scrub([]byte(text), key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = out.WithNewFile(name, string(scrubbed))
	}
	return out, nil
}

// issuer makes node certificates with the cluster CA, for disks.
type issuer struct {
	c     *nodes.Cluster
	ca    *pki.CA
	days  int
	extra map[string][]pki.SAN
}

// newIssuer checks the CA arguments against the security mode, before
// anything is built: tls mode needs a CA that may sign now, plaintext
// mode takes none. It returns nil in plaintext mode.
func newIssuer(ctx context.Context, c *nodes.Cluster, caCert *dagger.File, caKey *dagger.Secret, days int, extraNames []string) (*issuer, error) {
	if !c.TLS {
		if caCert != nil || caKey != nil || len(extraNames) > 0 {
			return nil, errors.New("ca cert: given for a cluster built with --security plaintext, whose nodes use no certificates; leave out --ca-cert, --ca-key and --extra-name")
		}
		return nil, nil
	}
	if caCert == nil || caKey == nil {
		return nil, errors.New("ca cert: tls disks need the cluster CA to sign each node's certificate: give --ca-cert ./ca/ca.crt --ca-key file:./ca/ca.key (make them once with the ca function), or build the cluster with --security plaintext")
	}
	extra, err := c.ParseExtraNames(extraNames)
	if err != nil {
		return nil, err
	}
	ca, err := loadCA(ctx, caCert, caKey)
	if err != nil {
		return nil, err
	}
	// Bad days fail here rather than after the first disk.
	if err := ca.CheckDays(days, time.Now()); err != nil {
		return nil, err
	}
	return &issuer{c: c, ca: ca, days: days, extra: extra}, nil
}

// node issues a node's key and certificate: the key store file (key and
// certificate) and the key alone.
func (is *issuer) node(n nodes.Node) (nodePEM, keyPEM []byte, err error) {
	certPEM, keyPEM, err := is.ca.Issue(is.c.NodeIdentity(n, is.extra[n.Name], is.days), time.Now())
	if err != nil {
		return nil, nil, err
	}
	return pki.Bundle(keyPEM, certPEM), keyPEM, nil
}

// loadCA reads and checks the CA certificate and key.
func loadCA(ctx context.Context, caCert *dagger.File, caKey *dagger.Secret) (*pki.CA, error) {
	cert, err := caCert.Contents(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca cert: %w", err)
	}
	key, err := caKey.Plaintext(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	return pki.LoadCA([]byte(cert), []byte(key), time.Now())
}

// diskRun decides what goes into bib's storage for a node: the node's own
// image, on a seed that holds the bootc base image and the bound images,
// which every node shares. A node image built here reaches the builder
// through the handoff registry, after the base. It returns the bound
// images' containers to load as archives, by archive path.
func (m *KafkaBootc) diskRun(ctx context.Context, c *nodes.Cluster, n nodes.Node, published string, h *handoff) (bib.Run, map[string]*dagger.Container, error) {
	stored, err := c.DiskImages(n, published)
	if err != nil {
		return bib.Run{}, nil, err
	}
	outputs, err := c.Disk.Outputs()
	if err != nil {
		return bib.Run{}, nil, err
	}
	run := bib.Run{Target: c.Ref(n), Outputs: outputs, Seed: &bib.Seed{}}
	archives := map[string]*dagger.Container{}
	for i, img := range stored {
		bi := bib.Image{Ref: img.Ref, Pull: img.Pull}
		switch {
		case img.Node && img.Pull == "":
			// The base first: pushes that start together cannot mount
			// from each other, and each would upload its gigabytes.
			base, err := h.put(ctx, "base", dag.Container().From(c.BaseImage))
			if err != nil {
				return bib.Run{}, nil, err
			}
			run.Seed.Base = &bib.Image{Pull: base, PlainHTTP: true}
			ctr, err := m.node(c, n, nil)
			if err != nil {
				return bib.Run{}, nil, err
			}
			if bi.Pull, err = h.put(ctx, n.Name, ctr); err != nil {
				return bib.Run{}, nil, err
			}
			bi.PlainHTTP = true
		case img.Pull == "":
			bi.Archive = path.Join(bib.ImagesDir, fmt.Sprintf("%d.tar", i))
			archives[bi.Archive] = dag.Container().From(img.Ref)
		}
		if img.Node {
			run.Images = append(run.Images, bi)
		} else {
			run.Seed.Images = append(run.Seed.Images, bi)
		}
	}
	return run, archives, nil
}

// seed runs a seed's script in the builder and returns SeedDir: the
// archive of a storage that holds the images every node shares. It
// depends only on the bootc base image, the bound images and the builder,
// so Dagger makes it once for every node of every role, and keeps it when
// only the cluster's settings change.
func (m *KafkaBootc) seed(seed *bib.Seed, archives map[string]*dagger.Container, h *handoff) *dagger.Directory {
	ctr := m.builder("kafka-bootc-bib-seed").WithDirectory(bib.SeedDir, dag.Directory())
	// In the images' order: a map's would vary, and with it Dagger's key.
	for _, img := range seed.Images {
		if img.Archive != "" {
			ctr = ctr.WithMountedFile(img.Archive, archives[img.Archive].AsTarball())
		}
	}
	if seed.Base != nil {
		ctr = h.bind(ctr, *seed.Base)
	}
	return runScript(ctr, seed.Script()).Directory(bib.SeedDir)
}

// builder is the bootc-image-builder image with the named cache volume as
// its container storage, which one run at a time uses.
func (m *KafkaBootc) builder(storage string) *dagger.Container {
	return dag.Container().From(m.Builder).
		WithMountedCache(bib.Storage, dag.CacheVolume(storage),
			dagger.ContainerWithMountedCacheOpts{Sharing: dagger.CacheSharingModeLocked})
}

// runScript runs a builder script as root with the privileges that podman
// and bib need.
func runScript(builder *dagger.Container, script string) *dagger.Container {
	return builder.WithExec([]string{"sh", "-c", script},
		dagger.ContainerWithExecOpts{InsecureRootCapabilities: true})
}

// The handoff registry carries the node images and the base to the
// builder. It runs as a Dagger service on a cache volume: a node's
// builder pulls only the layers its storage lacks, the base's gigabytes
// are written once, and an image archive, written whole for each node,
// would write them once per node.
const (
	handoffImage = "docker.io/library/registry:2.8.3"
	// handoffPush is where images are published to it: Dagger speaks
	// plain HTTP to localhost alone.
	handoffPush = "localhost:5000/kafka-bootc/"
	// handoffHost is its name in the builder's containers.
	handoffHost = "kafka-bootc-handoff"
)

// handoff publishes images to the handoff registry, each repository once
// per call.
type handoff struct {
	svc    *dagger.Service
	mu     sync.Mutex
	pushes map[string]*handoffPut
}

type handoffPut struct {
	once sync.Once
	ref  string
	err  error
}

func newHandoff() *handoff {
	svc := dag.Container().From(handoffImage).
		WithMountedCache("/var/lib/registry", dag.CacheVolume("kafka-bootc-handoff")).
		WithExposedPort(5000).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"registry", "serve", "/etc/docker/registry/config.yml"}})
	return &handoff{svc: svc, pushes: map[string]*handoffPut{}}
}

// put publishes an image to the handoff registry, once per repository
// (later callers wait for the first), and returns the reference by digest
// that the builder pulls.
func (h *handoff) put(ctx context.Context, repo string, ctr *dagger.Container) (string, error) {
	h.mu.Lock()
	p := h.pushes[repo]
	if p == nil {
		p = &handoffPut{}
		h.pushes[repo] = p
	}
	h.mu.Unlock()
	p.once.Do(func() {
		ref, err := ctr.Publish(ctx, handoffPush+repo+":latest", dagger.ContainerPublishOpts{RegistryService: h.svc})
		if err != nil {
			p.err = fmt.Errorf("handing %s to the builder: %w", repo, err)
			return
		}
		_, digest, ok := strings.Cut(ref, "@")
		if !ok {
			p.err = fmt.Errorf("handing %s to the builder: %q has no digest", repo, ref)
			return
		}
		p.ref = handoffHost + ":5000/kafka-bootc/" + repo + "@" + digest
	})
	return p.ref, p.err
}

// bind gives a builder container the handoff registry when one of the
// images comes from it.
func (h *handoff) bind(ctr *dagger.Container, images ...bib.Image) *dagger.Container {
	for _, img := range images {
		if img.PlainHTTP {
			return ctr.WithServiceBinding(handoffHost, h.svc)
		}
	}
	return ctr
}

// Running is the cluster as it runs, reached over SSH as the disk user:
// what health reads and rollout changes. Give it the module arguments that
// the cluster was built with: they name the nodes, the probes and the
// tags.
type Running struct {
	// +private
	Spec string
	// +private
	Identity *dagger.Secret
	// +private
	KnownHosts *dagger.File
	// +private
	InsecureAcceptNewHostKeys bool
	// +private
	Address []string
	// +private
	SSHUser string
	// +private
	Published string
}

// Running returns the running cluster, to check with health or upgrade
// with rollout: "running --identity file:$HOME/.ssh/id_ed25519
// --known-hosts ./known_hosts health". It only checks its arguments; the
// nodes are reached by the function that follows.
func (m *KafkaBootc) Running(
	// Private SSH key of the disk user, for example file:$HOME/.ssh/id_ed25519
	// (no passphrase). It is never printed.
	identity *dagger.Secret,
	// known_hosts file listing every node's host key, for example made with
	// ssh-keyscan. Host keys are always checked against it.
	// +optional
	knownHosts *dagger.File,
	// Accept the host key of a node that --known-hosts does not list, and
	// print it. A node whose key differs from its line is refused all the
	// same.
	// +optional
	insecureAcceptNewHostKeys bool,
	// Where to reach a node, as NODE=HOST or NODE=HOST:PORT (repeatable);
	// a node not given is reached at its hostname.
	// +optional
	address []string,
	// User to log in as; the disk user when not given.
	// +optional
	sshUser string,
	// The published images, as build-all printed them ("<node>
	// <reference>@sha256:..." lines): what health compares with and rollout
	// moves to. By default, the digests that the nodes' tags point to, looked
	// up once.
	// +optional
	published string,
) (*Running, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	if knownHosts == nil && !insecureAcceptNewHostKeys {
		return nil, errors.New("known hosts: give --known-hosts (ssh-keyscan NODE... > known_hosts), or --insecure-accept-new-host-keys to trust the nodes' keys on first use")
	}
	refs, err := health.ParsePublished(published)
	if err != nil {
		return nil, err
	}
	if _, err := health.Targets(c, address, refs); err != nil {
		return nil, err
	}
	return &Running{Spec: m.Spec, Identity: identity, KnownHosts: knownHosts, InsecureAcceptNewHostKeys: insecureAcceptNewHostKeys,
		Address: address, SSHUser: sshUser, Published: published}, nil
}

// Health reads every node and prints one table: each node's role and id,
// its booted and staged image digests and whether they are the published
// ones, its Kafka unit, its place in the metadata quorum and the
// under-replicated partitions it leads; then "healthy", or what is wrong.
// It fails when the cluster is unhealthy. Run it after start-vms.sh, and
// before and after an upgrade. Root commands run through sudo, which the
// node images allow for exactly these checks and rollout's steps.
//
// Never cached: it reads running machines.
// +cache="never"
func (r *Running) Health(ctx context.Context) (string, error) {
	c, targets, ssh, err := r.connect(ctx, false)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	rep := health.Check(ctx, ssh, c, targets)
	if !rep.Healthy() {
		return "", fmt.Errorf("the cluster is unhealthy\n%s", rep.Table())
	}
	return rep.Table(), nil
}

// Rollout moves the running cluster to the published node images, one node
// at a time: controllers first, the quorum's leader last of them, then
// brokers. It refuses to start unless the cluster is healthy (as health
// reports it). For each node it stages the image with bootc, checks that
// the staged digest is the target, reboots into it, and waits for the
// node, its Kafka unit and the whole cluster to be healthy again before
// the next. It stops at the first failure, leaves the nodes after it
// untouched and says what it did; a rerun skips the nodes already on their
// target, so it resumes. A node stages what its tag points to, so a tag
// that moves during the rollout stops it.
//
// Never cached: it changes running machines.
// +cache="never"
func (r *Running) Rollout(
	ctx context.Context,
	// Print the plan (order, current and target digest of every node) and
	// change nothing.
	// +optional
	dryRun bool,
	// Roll a node that fails back to the deployment it ran before, and
	// reboot it. Without it, a failed node is left as it is, for a look.
	// +optional
	rollback bool,
	// How long to wait, in seconds, for a node to come back, for its Kafka
	// unit, and for the cluster to be healthy again, each.
	// +default=900
	timeout int,
) (string, error) {
	if timeout < 1 {
		return "", fmt.Errorf("timeout %d: must be at least 1 second", timeout)
	}
	c, targets, ssh, err := r.connect(ctx, true)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	return rollout.Run(ctx, ssh, c, targets, rollout.Options{
		Timeout: time.Duration(timeout) * time.Second, Poll: 5 * time.Second,
		Rollback: rollback, DryRun: dryRun, Log: os.Stderr,
	})
}

// connect plans the cluster, pairs its nodes with their addresses and
// published digests, and opens SSH to them. A tag that cannot be looked
// up is an error when the targets are needed, a warning otherwise.
func (r *Running) connect(ctx context.Context, needTargets bool) (*nodes.Cluster, []health.Node, *remote.SSH, error) {
	c, err := (&KafkaBootc{Spec: r.Spec}).cluster()
	if err != nil {
		return nil, nil, nil, err
	}
	refs, err := health.ParsePublished(r.Published)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.Published == "" && c.Registry != "" {
		for _, n := range c.Nodes {
			ref, err := dag.Container().From(c.Ref(n)).ImageRef(ctx)
			switch {
			case err == nil:
				refs[n.Name] = ref
			case needTargets:
				return nil, nil, nil, fmt.Errorf("%s: looking up %s: %w", n.Name, c.Ref(n), err)
			default:
				fmt.Fprintf(os.Stderr, "%s: looking up %s: %v\n", n.Name, c.Ref(n), err)
			}
		}
	}
	targets, err := health.Targets(c, r.Address, refs)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := remote.Config{User: r.SSHUser, AcceptNewHostKeys: r.InsecureAcceptNewHostKeys, Log: os.Stderr}
	if cfg.User == "" {
		cfg.User = c.Disk.User
	}
	key, err := r.Identity.Plaintext(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.PrivateKey = []byte(key)
	if r.KnownHosts != nil {
		hosts, err := r.KnownHosts.Contents(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.KnownHosts = []byte(hosts)
	}
	ssh, err := remote.New(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, targets, ssh, nil
}

// cosignModule is the cosign that signs, built from its Go module, and
// goImage what builds it.
const (
	cosignModule = "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.1"
	// syftModule makes the SBOMs. Its rpmdb cataloger also looks in
	// /usr/share/rpm, where ostree-based images such as centos-bootc keep
	// the rpmdb (anchore/syft#1756; older syft looked in /var/lib/rpm only).
	syftModule = "github.com/anchore/syft/cmd/syft@v1.57.1"
	goImage    = "docker.io/library/golang:1.26"
	// registryAlias is the name a registry service is bound under in the
	// signing container: "localhost" is the container's own.
	registryAlias = "kafka-bootc-registry"
)

// signer signs published digests with cosign.
type signer struct {
	tool *dagger.Container
	// via is the host cosign reaches a registry service at, or empty.
	via string
}

// newSigner makes the cosign container with the key, its password and the
// registry's credentials, all as secrets, and checks that cosign can read
// the key and that it matches trusted, the public key that the nodes
// trust, if there is one.
func newSigner(ctx context.Context, c *nodes.Cluster, trusted string, key, password *dagger.Secret, username string, registryPassword *dagger.Secret, registryService *dagger.Service) (*signer, error) {
	tool := goTool(cosignModule).WithSecretVariable("COSIGN_KEY", key)
	if password != nil {
		tool = tool.WithSecretVariable("COSIGN_PASSWORD", password)
	} else {
		tool = tool.WithEnvVariable("COSIGN_PASSWORD", "")
	}
	// An exec that fails would hide this message behind its exit code.
	read := tool.WithExec([]string{"cosign", "public-key", "--key", "env://COSIGN_KEY"}, dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny})
	code, err := read.ExitCode(ctx)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		stderr, _ := read.Stderr(ctx)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		return nil, fmt.Errorf("signing key: cosign cannot open it as a cosign private key with the given --signing-password (%s)", lines[len(lines)-1])
	}
	pub, err := read.Stdout(ctx)
	if err != nil {
		return nil, err
	}
	if trusted != "" {
		same, err := nodes.SamePublicKey(pub, trusted)
		if err != nil {
			return nil, fmt.Errorf("signing key: its public key: %w", err)
		}
		if !same {
			return nil, errors.New("signing key: does not match the public key that the nodes trust (--signing-public-key, or --trusted-public-key during a rotation): they would refuse every image it signs")
		}
	}
	s := &signer{tool: tool.WithNewFile("/kafka-bootc/cosign.pub", pub)}
	if registryPassword != nil {
		secret, err := registryPassword.Plaintext(ctx)
		if err != nil {
			return nil, err
		}
		auth, err := nodes.RegistryAuthConfig(c.Host(), username, secret)
		if err != nil {
			return nil, err
		}
		s.tool = s.tool.WithMountedSecret("/root/.docker/config.json", secretOf("kafka-bootc-cosign-auth", auth))
	}
	if registryService != nil {
		_, port, _ := strings.Cut(c.Host(), ":")
		s.via = registryAlias
		if port != "" {
			s.via += ":" + port
		}
		s.tool = s.tool.WithServiceBinding(registryAlias, registryService)
	}
	return s, nil
}

// goTool is a Go program built from its module, at the version named.
func goTool(module string) *dagger.Container {
	return dag.Container().From(goImage).
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("kafka-bootc-go-mod")).
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("kafka-bootc-go-build")).
		WithEnvVariable("GOBIN", "/usr/local/bin").
		WithExec([]string{"go", "install", module}).
		WithoutMount("/go/pkg/mod").
		WithoutMount("/root/.cache/go-build")
}

// signAndAttest signs a digest that build-all published, and attaches an
// SBOM of image: SPDX JSON from syft, as an attestation signed with the
// key. Each step runs every time, since the registry may have lost what an
// earlier run wrote, and writes only what cosign does not find signed by
// the key.
func (s *signer) signAndAttest(ctx context.Context, published string, image *dagger.Container) error {
	ref, err := nodes.CosignTarget(published, s.via)
	if err != nil {
		return err
	}
	run := s.tool.WithEnvVariable("KAFKA_BOOTC_SIGNING_RUN", time.Now().Format(time.RFC3339Nano))
	// found runs a cosign check with the key; the signatures go to no
	// transparency log (see CosignSignArgs).
	found := func(check ...string) (bool, error) {
		argv := append(append([]string{"cosign"}, check...), "--key", "/kafka-bootc/cosign.pub", "--insecure-ignore-tlog=true")
		argv = append(append(argv, ref.Transport...), ref.Target)
		code, err := run.WithExec(argv, dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny}).ExitCode(ctx)
		return code == 0, err
	}

	signed, err := found("verify")
	if err != nil {
		return fmt.Errorf("checking the signature of %s: %w", published, err)
	}
	if !signed {
		args := append(append([]string{"cosign"}, nodes.CosignSignArgs("env://COSIGN_KEY")...), ref.Transport...)
		args = append(append(args, ref.Identity...), ref.Target)
		if _, err := run.WithExec(args).Sync(ctx); err != nil {
			return fmt.Errorf("signing %s: %w", published, err)
		}
	}

	attested, err := found("verify-attestation", "--type", "spdxjson")
	if err != nil {
		return fmt.Errorf("checking the SBOM of %s: %w", published, err)
	}
	if attested {
		return nil
	}
	sbom := goTool(syftModule).
		WithMountedFile("/kafka-bootc/image.tar", image.AsTarball()).
		WithExec([]string{"syft", "scan", "oci-archive:/kafka-bootc/image.tar", "--output", "spdx-json=/kafka-bootc/sbom.spdx.json"}).
		File("/kafka-bootc/sbom.spdx.json")
	args := append(append([]string{"cosign"}, nodes.CosignAttestArgs("env://COSIGN_KEY", "/kafka-bootc/sbom.spdx.json")...), ref.Transport...)
	if _, err := run.WithMountedFile("/kafka-bootc/sbom.spdx.json", sbom).WithExec(append(args, ref.Target)).Sync(ctx); err != nil {
		return fmt.Errorf("attaching the SBOM of %s: %w", published, err)
	}
	return nil
}

// withVMScripts adds the scripts that start and remove the nodes' VMs.
func withVMScripts(dir *dagger.Directory, c *nodes.Cluster, ns []nodes.Node) (*dagger.Directory, error) {
	outputs, err := c.Disk.Outputs()
	if err != nil {
		return nil, err
	}
	for _, s := range bib.VMScripts(c.VMs(ns), outputs) {
		dir = dir.WithNewFile(s.Name, string(s.Content), dagger.DirectoryWithNewFileOpts{Permissions: 0o755})
	}
	return dir, nil
}
