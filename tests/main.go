// End-to-end checks of kafka-bootc on a real Dagger engine: a small
// cluster is published to a registry that runs as a Dagger service, pulled
// back and inspected; reruns are checked against what the registry holds
// and what it was sent; one node's disk is built with bootc-image-builder
// and inspected with qemu-img; health and rollout run over SSH against
// stand-in nodes (real sshd and sudo, stand-in bootc, podman and
// systemctl); and the lab boots stand-in disks under qemu.
//
// Run them with: dagger call -m tests all
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"dagger/tests/internal/dagger"

	"github.com/sourcegraph/conc/pool"
)

// Tests checks kafka-bootc end to end.
type Tests struct{}

const (
	// registryHost is the host images are published under. A registry
	// service takes over a host name only: the scheme and port still come
	// from the reference and the engine's registry config, and the engine
	// speaks plain HTTP to localhost alone (containerd's rule), which is
	// what registry:2 serves on port 5000. Any other name would be dialled
	// with HTTPS on port 443.
	registryHost  = "localhost:5000"
	registryImage = "docker.io/library/registry:2.8.3"
	// toolsImage runs the scripts that read and change the registry's
	// storage: registry:2 has a shell, but not every tool they use.
	toolsImage = "docker.io/library/debian:bookworm"
	// passwordHash logs the disk user in; the tests never boot the disk.
	passwordHash = "$6$kafkabootc$Jz1xEJVnCZ1RZ.DYmMhx3RjXbQt4cCX1S0ZP5Lk0oGd4n3J9Y3gkQG6pXz1bE5P8A1G2fS9jzW0Zb0u6Pf2Jq/"
	// jmxJar stands in for the JMX exporter's jar, given as a file: the
	// tests need no Maven Central, and nothing here runs Java.
	jmxJar = "kafka-bootc end-to-end stand-in for jmx_prometheus_javaagent.jar\n"
)

// registry is a registry:2 service whose storage, and a log of every
// request it served, live in a cache volume of the given name, so that
// they outlive the service: Dagger starts a service for each use.
type registry struct {
	svc  *dagger.Service
	data *dagger.CacheVolume
}

func newRegistry(volume string) registry {
	data := dag.CacheVolume(volume)
	svc := dag.Container().From(registryImage).
		WithMountedCache("/var/lib/registry", data).
		WithExposedPort(5000).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"sh", "-c",
			"exec registry serve /etc/docker/registry/config.yml >>/var/lib/registry/requests.log 2>&1"}})
	return registry{svc: svc, data: data}
}

// run runs a shell script next to the registry's storage, mounted at
// /var/lib/registry. step names the step, so that no two steps share a
// cached result.
func (r registry) run(ctx context.Context, step, script string) (string, error) {
	return dag.Container().From(toolsImage).
		WithMountedCache("/var/lib/registry", r.data).
		WithEnvVariable("STEP", step).
		WithExec([]string{"sh", "-c", script}).
		Stdout(ctx)
}

// cluster is the cluster under test: one broker (node id 1) and one
// controller (node id 1001), published under namespace on the registry host.
func cluster(namespace string, opts clusterOpts) *dagger.KafkaBootc {
	return clusterAt(registryHost+"/"+namespace, opts)
}

// clusterOpts are what a check changes of the cluster under test.
type clusterOpts struct {
	// baseImage replaces the bootc base image.
	baseImage string
	// kafkaImage replaces the Kafka image.
	kafkaImage string
	// signingPublicKey is the key the node images are signed with.
	signingPublicKey *dagger.File
}

// clusterAt is the cluster under test, published to registry, described
// by a cluster file as a user writes one.
func clusterAt(registry string, opts clusterOpts) *dagger.KafkaBootc {
	sum := sha256.Sum256([]byte(jmxJar))
	file := fmt.Sprintf("version: 1\nregistry: %s\nbrokers:\n  count: 1\ncontrollers:\n  count: 1\nmetrics:\n  jmxExporter:\n    sha256: %s\n",
		registry, hex.EncodeToString(sum[:]))
	if opts.baseImage != "" || opts.kafkaImage != "" {
		file += "images:\n"
	}
	if opts.baseImage != "" {
		file += "  base: " + opts.baseImage + "\n"
	}
	if opts.kafkaImage != "" {
		file += "  kafka: " + opts.kafkaImage + "\n"
	}
	return dag.KafkaBootc(dagger.KafkaBootcOpts{
		Cluster:          dag.Directory().WithNewFile("kafka-cluster.yaml", file).File("kafka-cluster.yaml"),
		JmxExporterJar:   dag.Directory().WithNewFile("jmx.jar", jmxJar).File("jmx.jar"),
		SigningPublicKey: opts.signingPublicKey,
	})
}

// nonce names what one run owns, such as a fresh registry.
func nonce() string { return strconv.FormatInt(time.Now().UnixNano(), 36) }

// All runs every check concurrently and reports every failure. Never
// cached: a check must look at what the module does now.
// +cache="never"
func (m *Tests) All(ctx context.Context) error {
	p := pool.New().WithContext(ctx)
	p.Go(m.Images)
	p.Go(m.Reruns)
	p.Go(m.Signing)
	p.Go(m.Disk)
	p.Go(m.Health)
	p.Go(m.Rollout)
	p.Go(m.PrivateRegistry)
	p.Go(m.Preflight)
	p.Go(m.Lab)
	return p.Wait()
}
