// End-to-end checks of kafka-bootc on a real Dagger engine: a small
// cluster is published to a registry that runs as a Dagger service, pulled
// back and inspected, and one node's disk is built with
// bootc-image-builder and inspected with qemu-img.
//
// Run them with: dagger call -m tests all
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"dagger/tests/internal/dagger"

	"github.com/sourcegraph/conc/pool"
)

// Tests checks kafka-bootc end to end.
type Tests struct{}

const (
	// registry is the address images are published under; the registry
	// service answers for it.
	registry = "registry.test/e2e"
	// passwordHash logs the disk user in; the tests never boot the disk.
	passwordHash = "$6$kafkabootc$Jz1xEJVnCZ1RZ.DYmMhx3RjXbQt4cCX1S0ZP5Lk0oGd4n3J9Y3gkQG6pXz1bE5P8A1G2fS9jzW0Zb0u6Pf2Jq/"
)

// cluster is the cluster under test: one broker (node id 1) and one
// controller (node id 2).
func cluster() *dagger.KafkaBootc {
	return dag.KafkaBootc(dagger.KafkaBootcOpts{Registry: registry, Brokers: 1, Controllers: 1})
}

// All runs every check concurrently and reports every failure.
func (m *Tests) All(ctx context.Context) error {
	p := pool.New().WithContext(ctx)
	p.Go(m.Images)
	p.Go(m.Disk)
	return p.Wait()
}

// Images publishes the cluster with build-all to a registry service, pulls
// every image back by the digest build-all printed, and checks inside it
// the files and symlinks that config renders, the labels, the quadlets as
// podman's generator turns them into services, and the bound images.
func (m *Tests) Images(ctx context.Context) error {
	reg := dag.Container().From("docker.io/library/registry:2.8.3").WithExposedPort(5000).AsService()
	kb := cluster()
	out, err := kb.BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: reg})
	if err != nil {
		return fmt.Errorf("build-all: %w", err)
	}
	refs, err := publishedRefs(out)
	if err != nil {
		return err
	}
	config := kb.Config()
	nodes := []struct {
		name, role string
		id         int
	}{{"kafka-broker-1", "broker", 1}, {"kafka-controller-1", "controller", 2}}
	p := pool.New().WithContext(ctx)
	for _, n := range nodes {
		p.Go(func(ctx context.Context) error {
			ref, ok := refs[n.name]
			if !ok {
				return fmt.Errorf("build-all printed no reference for %s:\n%s", n.name, out)
			}
			if want := registry + "/" + n.name + ":latest@sha256:"; !strings.HasPrefix(ref, want) {
				return fmt.Errorf("%s: published as %q, want %s...", n.name, ref, want)
			}
			img := dag.Container().From(ref, dagger.ContainerFromOpts{RegistryService: reg})
			if err := checkImage(ctx, img, config, n.name, n.role, n.id); err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			return nil
		})
	}
	return p.Wait()
}

// publishedRefs reads build-all's "<node> <reference>" lines.
func publishedRefs(out string) (map[string]string, error) {
	refs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		node, ref, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(ref, "@sha256:") {
			return nil, fmt.Errorf("build-all: line %q is not <node> <digest reference>", line)
		}
		refs[node] = ref
	}
	return refs, nil
}

// verify compares the image with the rendered directories of its role and
// of the node, mounted at /expected/role and /expected/node, and checks
// the bound images, quadlet's view of the units and the JMX exporter.
const verify = `set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
for dir in /expected/role /expected/node; do
	cd "$dir"
	for f in $(find . -type f ! -name Containerfile); do
		[ "$(sha256sum < "$f")" = "$(sha256sum < "/${f#./}")" ] || fail "/${f#./} differs from config"
	done
	for l in $(find . -type l); do
		[ "$(readlink "$l")" = "$(readlink "/${l#./}")" ] || fail "/${l#./} is not the link config renders"
	done
done
for l in /usr/lib/bootc/bound-images.d/*; do
	[ -L "$l" ] || fail "$l is not a symlink"
	grep '^Image=' "$(readlink -f "$l")" | sed 's/^Image=//'
done > /tmp/bound
sort /tmp/bound | tr '\n' ' ' | grep -qx "$BOUND " || fail "bound images: $(cat /tmp/bound), want $BOUND"
/usr/libexec/podman/quadlet -dryrun > /tmp/units 2>/tmp/quadlet.err || fail "quadlet: $(cat /tmp/quadlet.err)"
grep -q -- "--storage-opt=additionalimagestore=/usr/lib/bootc/storage run --name $UNIT " /tmp/units || fail "no $UNIT service with the bound image store"
grep -q -- "--env KAFKA_NODE_ID=$NODE_ID " /tmp/units || fail "node id $NODE_ID not in the service"
grep -q -- "--network host" /tmp/units || fail "node-exporter is not on the host network"
grep -q -- "-javaagent:/opt/kafka-bootc/jmx-exporter/jmx_prometheus_javaagent.jar=7071:" /tmp/units || fail "Kafka does not load the JMX exporter"
[ -s /usr/share/kafka-bootc/jmx-exporter/jmx_prometheus_javaagent.jar ] || fail "no JMX exporter jar"
[ "$(systemctl is-enabled bootc-fetch-apply-updates.timer 2>/dev/null || true)" = masked ] || fail "the auto-update timer is not masked"
[ "$(cat /etc/hostname)" = "$NODE" ] || fail "hostname $(cat /etc/hostname)"
`

func checkImage(ctx context.Context, img *dagger.Container, config *dagger.Directory, node, role string, id int) error {
	for label, want := range map[string]string{"containers.bootc": "1", "org.opencontainers.image.title": node} {
		got, err := img.Label(ctx, label)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("label %s = %q, want %q", label, got, want)
		}
	}
	_, err := img.
		WithMountedDirectory("/expected/role", config.Directory("kafka-"+role)).
		WithMountedDirectory("/expected/node", config.Directory(node)).
		WithEnvVariable("BOUND", "docker.io/apache/kafka:3.8.0 docker.io/prom/node-exporter:v1.8.2").
		WithEnvVariable("UNIT", "kafka-"+role).
		WithEnvVariable("NODE", node).
		WithEnvVariable("NODE_ID", fmt.Sprint(id)).
		WithExec([]string{"sh", "-c", verify}).
		Sync(ctx)
	return err
}

// Disk builds the controller's disk with bootc-image-builder and checks it
// with qemu-img: a qcow2 of at least the 20 GiB root size, with bib's
// manifest and the VM scripts beside it.
func (m *Tests) Disk(ctx context.Context) error {
	const node = "kafka-controller-1"
	disks := cluster().Disk(node, dagger.KafkaBootcDiskOpts{Password: dag.SetSecret("e2e-password-hash", passwordHash)})
	for _, p := range []string{node + "/manifest-qcow2.json", "start-vms.sh", "remove-vms.sh"} {
		if _, err := disks.File(p).Size(ctx); err != nil {
			return fmt.Errorf("disk: no %s: %w", p, err)
		}
	}
	info, err := dag.Container().From("quay.io/centos/centos:stream9").
		WithExec([]string{"dnf", "-y", "install", "qemu-img"}).
		WithMountedDirectory("/disks", disks).
		WithExec([]string{"qemu-img", "info", "--output=json", "/disks/" + node + "/qcow2/disk.qcow2"}).
		Stdout(ctx)
	if err != nil {
		return fmt.Errorf("disk: qemu-img info: %w", err)
	}
	var img struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal([]byte(info), &img); err != nil {
		return fmt.Errorf("disk: qemu-img info: %w\n%s", err, info)
	}
	if img.Format != "qcow2" || img.VirtualSize < 20<<30 {
		return fmt.Errorf("disk: %s is %s of %d bytes, want qcow2 of at least 20 GiB", node, img.Format, img.VirtualSize)
	}
	return nil
}
