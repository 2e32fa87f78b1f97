// The checks of build-all: the images, reruns and a base whose tag moves.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"dagger/tests/internal/dagger"

	"github.com/sourcegraph/conc/pool"
)

// Images publishes the cluster with build-all to a registry service, pulls
// every image back by the digest build-all printed, and checks inside it
// the files and symlinks that config renders, the labels, the quadlets as
// podman's generator turns them into services, and the bound images.
// +cache="never"
func (m *Tests) Images(ctx context.Context) error {
	reg := newRegistry("kafka-bootc-e2e-images-" + nonce())
	kb := cluster("e2e", clusterOpts{})
	out, err := kb.BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: reg.svc, Format: "json"})
	if err != nil {
		return fmt.Errorf("build-all: %w", err)
	}
	// The structured result, as the workflow reads it.
	var published []struct {
		Node, Image, Digest string
		Signed, SBOM        bool
	}
	if err := json.Unmarshal([]byte(out), &published); err != nil {
		return fmt.Errorf("build-all --format json: %w:\n%s", err, out)
	}
	refs := map[string]string{}
	for _, p := range published {
		if !strings.HasSuffix(p.Image, "@"+p.Digest) || p.Signed || p.SBOM {
			return fmt.Errorf("build-all --format json: %+v: the image must end in its digest, unsigned", p)
		}
		refs[p.Node] = p.Image
	}
	config := kb.Config()
	nodes := []struct {
		name, role string
		id         int
	}{{"kafka-broker-1", "broker", 1}, {"kafka-controller-1", "controller", 1001}}
	p := pool.New().WithContext(ctx)
	for _, n := range nodes {
		p.Go(func(ctx context.Context) error {
			ref, ok := refs[n.name]
			if !ok {
				return fmt.Errorf("build-all printed no reference for %s:\n%s", n.name, out)
			}
			if want := registryHost + "/e2e/" + n.name + ":latest@sha256:"; !strings.HasPrefix(ref, want) {
				return fmt.Errorf("%s: published as %q, want %s...", n.name, ref, want)
			}
			img := dag.Container().From(ref, dagger.ContainerFromOpts{RegistryService: reg.svc})
			if err := checkImage(ctx, img, config, n.name, n.role, n.id); err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			return nil
		})
	}
	return p.Wait()
}

// Reruns checks that build-all never reports a publish that did not
// happen, and never uploads what the registry has: after the registry
// loses an image, a rerun with the same arguments publishes it again; a
// rerun with nothing changed gives the same digests and uploads no layer.
// +cache="never"
func (m *Tests) Reruns(ctx context.Context) error {
	reg := newRegistry("kafka-bootc-e2e-reruns-" + nonce())
	buildAll := func(step string) (map[string]string, error) {
		out, err := cluster("reruns", clusterOpts{}).BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: reg.svc})
		if err != nil {
			return nil, fmt.Errorf("%s: build-all: %w", step, err)
		}
		return publishedRefs(out)
	}
	first, err := buildAll("first run")
	if err != nil {
		return err
	}
	// The log must show the first run's uploads, or the check on the third
	// run below could not fail.
	if n, err := reg.run(ctx, "count uploads of the first run", uploadsAfter(0)+" | wc -l"); err != nil || atoi(n) == 0 {
		return fmt.Errorf("the registry's log shows no upload of the first run (%q, %v)", n, err)
	}
	const lost = "kafka-broker-1"
	digest := first[lost][strings.LastIndex(first[lost], "@")+1:]
	// registry:2's storage layout: a repository holds a manifest while
	// this link exists (distribution's storage path spec).
	link := "/var/lib/registry/docker/registry/v2/repositories/reruns/" + lost + "/_manifests/revisions/sha256/" +
		strings.TrimPrefix(digest, "sha256:") + "/link"
	has := fmt.Sprintf(`if [ -f %s ]; then echo present; else echo absent; fi`, link)
	if got, err := reg.run(ctx, "before losing it", has); err != nil || strings.TrimSpace(got) != "present" {
		return fmt.Errorf("the registry does not hold %s after the first run (%q, %v)", first[lost], got, err)
	}
	if _, err := reg.run(ctx, "lose "+digest, "rm -rf /var/lib/registry/docker/registry/v2/repositories/reruns/"+lost+"/_manifests"); err != nil {
		return fmt.Errorf("deleting %s from the registry: %w", lost, err)
	}
	second, err := buildAll("the rerun after the registry lost " + lost)
	if err != nil {
		return err
	}
	if got, err := reg.run(ctx, "after the rerun", has); err != nil || strings.TrimSpace(got) != "present" {
		return fmt.Errorf("the rerun printed %s, but the registry does not hold it (%q, %v)", second[lost], got, err)
	}
	if !maps.Equal(first, second) {
		return fmt.Errorf("the same build published other digests: %v, then %v", first, second)
	}
	// Every request the registry served so far is in the log; the third
	// run may add HEADs and manifests, but no blob upload.
	before, err := reg.run(ctx, "count requests after the rerun", "wc -l < /var/lib/registry/requests.log")
	if err != nil {
		return err
	}
	third, err := buildAll("the rerun with nothing changed")
	if err != nil {
		return err
	}
	if !maps.Equal(first, third) {
		return fmt.Errorf("the rerun with nothing changed published other digests: %v, then %v", first, third)
	}
	uploads, err := reg.run(ctx, "uploads after line "+strings.TrimSpace(before), uploadsAfter(atoi(before)))
	if err != nil {
		return err
	}
	if strings.TrimSpace(uploads) != "" {
		return fmt.Errorf("the rerun with nothing changed uploaded blobs:\n%s", uploads)
	}
	return nil
}

// BuildOnMovedBase publishes a changed base image under one tag, then runs
// build-all on it with arguments that never change, and returns
// build-all's output. Run it twice with different variants, each in a
// session of its own: Dagger resolves a tag once per session. The second
// run must print new digests; tests/moved_base_test.go does this.
// +cache="never"
func (m *Tests) BuildOnMovedBase(
	ctx context.Context,
	// What makes this base differ from the last one, written into it.
	variant string,
) (string, error) {
	reg := newRegistry("kafka-bootc-e2e-moved-base")
	base := registryHost + "/moved-base/centos-bootc:moving"
	_, err := dag.Container().From("quay.io/centos-bootc/centos-bootc:stream9").
		WithNewFile("/usr/share/kafka-bootc-e2e/variant", variant+"\n").
		Publish(ctx, base, dagger.ContainerPublishOpts{RegistryService: reg.svc})
	if err != nil {
		return "", fmt.Errorf("publishing the base %s: %w", variant, err)
	}
	out, err := cluster("moved-base", clusterOpts{baseImage: base}).
		BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: reg.svc})
	if err != nil {
		return "", fmt.Errorf("build-all: %w", err)
	}
	return out, nil
}

// publishedRefs reads build-all's "<node> <reference>" lines.
func publishedRefs(out string) (map[string]string, error) {
	refs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[1], "@sha256:") {
			return nil, fmt.Errorf("build-all: line %q is not <node> <digest reference>", line)
		}
		refs[f[0]] = f[1]
	}
	return refs, nil
}

// uploadsAfter is a script that prints the requests, after the given line
// of the registry's log, that start or continue a blob upload (a cross-
// repository mount starts as one too).
func uploadsAfter(line int) string {
	return fmt.Sprintf(`{ tail -n +%d /var/lib/registry/requests.log | grep -E 'http\.request\.uri="?/v2/[^ ]*/blobs/uploads/' | grep -v 'http\.request\.method=HEAD' || true; }`, line+1)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
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
[ "$(cat /usr/share/kafka-bootc/jmx-exporter/jmx_prometheus_javaagent.jar)" = "$JMX_JAR" ] || fail "the JMX exporter is not the jar given"
[ "$(systemctl is-enabled bootc-fetch-apply-updates.timer 2>/dev/null || true)" = masked ] || fail "the auto-update timer is not masked"
[ "$(cat /etc/hostname)" = "$NODE" ] || fail "hostname $(cat /etc/hostname)"
# TLS: the units take the node's files as podman secrets, and the image
# holds no key: those exist only on a disk.
grep -q -- "--secret $UNIT-node-pem,type=mount,target=/etc/kafka-bootc/tls/node.pem,uid=1000,gid=1000,mode=0400" /tmp/units || fail "Kafka does not get the node's key"
grep -q -- "--web.config.file=/etc/kafka-bootc/node-exporter.yml" /tmp/units || fail "node-exporter does not serve TLS"
[ ! -e /etc/kafka-bootc/tls ] || fail "the image holds /etc/kafka-bootc/tls"
keys=$(grep -rlsI -e "PRIVATE KEY-----" -e "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t" /etc /usr/share/kafka-bootc /usr/share/containers /usr/lib/bootc /usr/lib/tmpfiles.d 2>/dev/null || true)
[ -z "$keys" ] || fail "private keys in the image: $keys"
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
		WithEnvVariable("BOUND", "docker.io/apache/kafka:4.4.0 docker.io/prom/node-exporter:v1.8.2").
		WithEnvVariable("UNIT", "kafka-"+role).
		WithEnvVariable("NODE", node).
		WithEnvVariable("NODE_ID", fmt.Sprint(id)).
		WithEnvVariable("JMX_JAR", strings.TrimSuffix(jmxJar, "\n")).
		WithExec([]string{"sh", "-c", verify}).
		Sync(ctx)
	return err
}
