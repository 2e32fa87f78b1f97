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
//   - running.go: the running cluster, over SSH: health, rollout, finalize;
//   - certificates.go: its certificates: renewal and trust rollouts.
package main

import (
	"context"
	"encoding/json"
	"fmt"

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

// New reads the cluster file; a cluster that breaks a rule is refused.
//
// Everything that describes the cluster is in one file, kafka-cluster.yaml
// (init writes a commented one), which every command reads: give it as
// --cluster to each. Without it, the default cluster: 3 brokers and 3
// controllers. Secrets are never in it; they are the functions' flags. A
// file that breaks a rule is refused here, before anything is built, with
// its line.
func New(
	ctx context.Context,
	// The cluster file, kafka-cluster.yaml as init writes it, for example
	// ./kafka-cluster.yaml. Without it, the default cluster.
	// +optional
	cluster *dagger.File,
	// Registry to publish node images to, instead of the file's, for
	// example quay.io/me: for CI, where each repository has its own.
	// +optional
	registry string,
	// Tag to publish node images under, instead of the file's, for example
	// a git tag in CI.
	// +optional
	tag string,
	// The JMX exporter's jar as a file, for air-gapped builds: used instead
	// of downloading it, and checked against the file's
	// metrics.jmxExporter.sha256.
	// +optional
	jmxExporterJar *dagger.File,
	// Public key that node images are signed with (cosign.pub, as cosign
	// generate-key-pair writes it). Every node image then carries it and a
	// policy under which the node pulls only node images signed with it,
	// and its disk is installed with that policy enforced. Give build-all
	// the matching --signing-key.
	// +optional
	signingPublicKey *dagger.File,
) (*KafkaBootc, error) {
	name, text := "kafka-cluster.yaml", ""
	if cluster != nil {
		var err error
		if name, err = cluster.Name(ctx); err != nil {
			return nil, fmt.Errorf("cluster file: %w", err)
		}
		if text, err = cluster.Contents(ctx); err != nil {
			return nil, fmt.Errorf("cluster file %s: %w", name, err)
		}
	}
	key := ""
	if signingPublicKey != nil {
		var err error
		if key, err = signingPublicKey.Contents(ctx); err != nil {
			return nil, fmt.Errorf("signing public key: %w", err)
		}
	}
	s, builder, err := loadCluster(name, []byte(text), registry, tag, key, jmxExporterJar != nil)
	if err != nil {
		return nil, err
	}
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return &KafkaBootc{Spec: string(spec), Builder: builder, JMXExporterJar: jmxExporterJar}, nil
}

// loadCluster reads a cluster file and applies the constructor's flags to
// it: the registry and tag overrides, the signing key, and whether a JMX
// exporter jar is given.
func loadCluster(name string, text []byte, registry, tag, signingPublicKey string, jar bool) (nodes.Spec, string, error) {
	s, builder, err := nodes.ReadFile(name, text)
	if err != nil {
		return nodes.Spec{}, "", err
	}
	if registry != "" {
		s.Registry = registry
	}
	if tag != "" {
		s.Tag = tag
	}
	s.SigningPublicKey = signingPublicKey
	if jar && s.MetricsPort == 0 {
		return nodes.Spec{}, "", fmt.Errorf("jmx exporter jar: given, but %s leaves the JMX exporter out (metrics.jmxExporter.enabled: false); give one or the other", name)
	}
	if _, err := nodes.Plan(s); err != nil {
		return nodes.Spec{}, "", err
	}
	return s, builder, nil
}

// Init returns a cluster file with every key, its default and its help.
//
// "init -o ." writes kafka-cluster.yaml, which describes the default
// cluster, and kafka-cluster.schema.json, its JSON Schema, with which
// editors that use yaml-language-server complete and check the file.
// Edit the file, keep it in git, and give it to every command as
// --cluster ./kafka-cluster.yaml. It depends on nothing, so Dagger may
// keep its result.
func (m *KafkaBootc) Init() *dagger.Directory {
	return dag.Directory().
		WithNewFile("kafka-cluster.yaml", string(nodes.DefaultFile)).
		WithNewFile("kafka-cluster.schema.json", string(nodes.FileSchema))
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
// It returns every file of every image, each image in a directory of
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
