// End-to-end checks of kafka-bootc on a real Dagger engine: a small
// cluster is published to a registry that runs as a Dagger service, pulled
// back and inspected; reruns are checked against what the registry holds
// and what it was sent; one node's disk is built with bootc-image-builder
// and inspected with qemu-img; and health and rollout run over SSH against
// stand-in nodes (real sshd and sudo, stand-in bootc, podman and
// systemctl).
//
// Run them with: dagger call -m tests all
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	// signingPublicKey is the key the node images are signed with.
	signingPublicKey *dagger.File
}

// clusterAt is the cluster under test, published to registry, described
// by a cluster file as a user writes one.
func clusterAt(registry string, opts clusterOpts) *dagger.KafkaBootc {
	sum := sha256.Sum256([]byte(jmxJar))
	file := fmt.Sprintf("version: 1\nregistry: %s\nbrokers:\n  count: 1\ncontrollers:\n  count: 1\nmetrics:\n  jmxExporter:\n    sha256: %s\n",
		registry, hex.EncodeToString(sum[:]))
	if opts.baseImage != "" {
		file += "images:\n  base: " + opts.baseImage + "\n"
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
	return p.Wait()
}

// PrivateRegistry publishes to a registry that requires a login
// (registry:2.8.3 with htpasswd): build-all without a login fails with one
// error that names the registry and says it needs credentials; with
// with-registry-auth it publishes, and every image pulls back with the
// login.
// +cache="never"
func (m *Tests) PrivateRegistry(ctx context.Context) error {
	password := "e2e-" + nonce()
	htpasswd, err := dag.Container().From(toolsImage).
		WithExec([]string{"sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null"}).
		WithSecretVariable("PASSWORD", dag.SetSecret("e2e-registry-password-"+password, password)).
		WithExec([]string{"sh", "-c", `htpasswd -Bbn e2e "$PASSWORD" > /htpasswd`}).
		File("/htpasswd").Sync(ctx)
	if err != nil {
		return err
	}
	svc := dag.Container().From(registryImage).
		WithMountedCache("/var/lib/registry", dag.CacheVolume("kafka-bootc-e2e-private-"+nonce())).
		WithFile("/auth/htpasswd", htpasswd).
		WithEnvVariable("REGISTRY_AUTH", "htpasswd").
		WithEnvVariable("REGISTRY_AUTH_HTPASSWD_REALM", "kafka-bootc-e2e").
		WithEnvVariable("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd").
		WithExposedPort(5000).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"registry", "serve", "/etc/docker/registry/config.yml"}})
	kb := cluster("private", clusterOpts{})
	_, err = kb.BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: svc})
	if err == nil || !strings.Contains(err.Error(), "the registry "+registryHost+" refused access: it needs credentials") {
		return fmt.Errorf("build-all without a login: %v", err)
	}
	secret := dag.SetSecret("e2e-registry-login-"+password, password)
	out, err := kb.WithRegistryAuth(registryHost, "e2e", secret).BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: svc})
	if err != nil {
		return fmt.Errorf("build-all with a login: %w", err)
	}
	refs, err := publishedRefs(out)
	if err != nil {
		return err
	}
	for name, ref := range refs {
		if _, err := dag.Container().WithRegistryAuth(registryHost, "e2e", secret).
			From(ref, dagger.ContainerFromOpts{RegistryService: svc}).Sync(ctx); err != nil {
			return fmt.Errorf("%s: %s does not pull back with the login: %w", name, ref, err)
		}
	}
	return nil
}

// Images publishes the cluster with build-all to a registry service, pulls
// every image back by the digest build-all printed, and checks inside it
// the files and symlinks that config renders, the labels, the quadlets as
// podman's generator turns them into services, and the bound images.
// +cache="never"
func (m *Tests) Images(ctx context.Context) error {
	reg := newRegistry("kafka-bootc-e2e-images-" + nonce())
	kb := cluster("e2e", clusterOpts{})
	out, err := kb.BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: reg.svc})
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

// cosign is the cosign that kafka-bootc signs with, built the same way, and
// registryAlias the name a registry service is bound under next to it.
func cosign() *dagger.Container {
	return dag.Container().From("docker.io/library/golang:1.26").
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("kafka-bootc-go-mod")).
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("kafka-bootc-go-build")).
		WithEnvVariable("GOBIN", "/usr/local/bin").
		WithExec([]string{"go", "install", "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.1"}).
		WithoutMount("/go/pkg/mod").
		WithoutMount("/root/.cache/go-build")
}

// Signing runs build-all with a cosign key and checks with cosign verify
// that every published digest is signed by it, and by no other key; a
// rerun with nothing changed signs nothing again: the registry receives
// one signature manifest per node in all.
// +cache="never"
func (m *Tests) Signing(ctx context.Context) error {
	reg := newRegistry("kafka-bootc-e2e-signing-" + nonce())
	const password = "e2e signing password"
	keys := func(name string) *dagger.Directory {
		return cosign().WithSecretVariable("COSIGN_PASSWORD", dag.SetSecret("e2e-cosign-password", password)).WithWorkdir("/keys").
			WithEnvVariable("KEY", name).
			WithExec([]string{"cosign", "generate-key-pair"}).Directory("/keys")
	}
	mine, other := keys("e2e "+nonce()), keys("other "+nonce())
	key, err := mine.File("cosign.key").Contents(ctx)
	if err != nil {
		return fmt.Errorf("cosign generate-key-pair: %w", err)
	}
	buildAll := func(step string) (map[string]string, error) {
		out, err := cluster("signing", clusterOpts{}).BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{
			RegistryService: reg.svc,
			SigningKey:      dag.SetSecret("e2e-cosign-key-"+nonce(), key),
			SigningPassword: dag.SetSecret("e2e-cosign-password", password),
		})
		if err != nil {
			return nil, fmt.Errorf("%s: build-all: %w", step, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasSuffix(line, " signed, SBOM attached") {
				return nil, fmt.Errorf("%s: build-all printed %q, which does not say that it was signed", step, line)
			}
		}
		return publishedRefs(out)
	}
	if err := keyChecks(ctx, mine, other, key, password); err != nil {
		return err
	}
	refs, err := buildAll("first run")
	if err != nil {
		return err
	}
	verify := func(keys *dagger.Directory, ref string) (int, error) {
		target := registryTarget(ref)
		return cosign().WithServiceBinding("kafka-bootc-registry", reg.svc).
			WithMountedDirectory("/keys", keys).
			WithEnvVariable("RUN", nonce()).
			WithExec([]string{"cosign", "verify", "--key", "/keys/cosign.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--allow-insecure-registry", target},
				dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny}).
			ExitCode(ctx)
	}
	for node, ref := range refs {
		if code, err := verify(mine, ref); err != nil || code != 0 {
			return fmt.Errorf("%s: cosign verify with the signing key: exit %d, %v", node, code, err)
		}
		if code, err := verify(other, ref); err != nil || code == 0 {
			return fmt.Errorf("%s: cosign verify with another key passed (exit %d, %v)", node, code, err)
		}
	}
	for node, ref := range refs {
		if err := checkSBOM(ctx, reg, mine, ref); err != nil {
			return fmt.Errorf("%s: %w", node, err)
		}
	}
	again, err := buildAll("rerun")
	if err != nil {
		return err
	}
	if !maps.Equal(refs, again) {
		return fmt.Errorf("the rerun published other digests: %v, then %v", refs, again)
	}
	for _, kind := range []string{"sig", "att"} {
		n, err := reg.run(ctx, "count "+kind+" manifests", `grep -c 'PUT /v2/[^ ]*/manifests/sha256-[0-9a-f]*\.`+kind+`' /var/lib/registry/requests.log || true`)
		if err != nil {
			return err
		}
		if atoi(strings.TrimSpace(n)) != len(refs) {
			return fmt.Errorf("the registry received %s .%s manifests for %d nodes over two runs: a rerun signed or attested again what was done", strings.TrimSpace(n), kind, len(refs))
		}
	}
	return nil
}

// keyChecks runs build-all for nodes that trust another key than the one
// it signs with: it must refuse before it builds anything; and during a
// rotation, where the nodes trust the signing key and the images carry
// the other, it must go past that check (and then fail to publish to a
// registry that does not exist). A policy for the local registry would be
// refused, so these nodes name one that nobody reaches.
func keyChecks(ctx context.Context, mine, other *dagger.Directory, key, password string) error {
	kb := clusterAt("registry.invalid/e2e", clusterOpts{signingPublicKey: other.File("cosign.pub")})
	signing := dagger.KafkaBootcBuildAllOpts{
		SigningKey:      dag.SetSecret("e2e-cosign-key-checks-"+nonce(), key),
		SigningPassword: dag.SetSecret("e2e-cosign-password", password),
	}
	_, err := kb.BuildAll(ctx, signing)
	if err == nil || !strings.Contains(err.Error(), "signing key: does not match the public key that the nodes trust") {
		return fmt.Errorf("build-all with a key the nodes do not trust: %v, want a refusal", err)
	}
	signing.TrustedPublicKey = mine.File("cosign.pub")
	_, err = kb.BuildAll(ctx, signing)
	if err == nil || strings.Contains(err.Error(), "signing key") || !strings.Contains(err.Error(), "registry.invalid") {
		return fmt.Errorf("build-all during a rotation: %v, want it to pass the key check and fail to publish to registry.invalid", err)
	}
	return nil
}

// registryTarget is a reference that build-all published, as a container
// bound to the registry service reaches it.
func registryTarget(ref string) string {
	return "kafka-bootc-registry:5000" + strings.TrimPrefix(ref[:strings.Index(ref, ":latest@")], registryHost) + ref[strings.Index(ref, "@"):]
}

// checkSBOM verifies the SBOM attestation of a published image with the
// key, and decodes it: an in-toto statement whose predicate is an SPDX
// document that lists packages.
func checkSBOM(ctx context.Context, reg registry, keys *dagger.Directory, ref string) error {
	out, err := cosign().WithServiceBinding("kafka-bootc-registry", reg.svc).
		WithMountedDirectory("/keys", keys).
		WithEnvVariable("RUN", nonce()).
		WithExec([]string{"cosign", "verify-attestation", "--key", "/keys/cosign.pub", "--insecure-ignore-tlog=true", "--type", "spdxjson",
			"--allow-http-registry", "--allow-insecure-registry", registryTarget(ref)}).
		Stdout(ctx)
	if err != nil {
		return fmt.Errorf("cosign verify-attestation: %w", err)
	}
	var envelope struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]), &envelope); err != nil {
		return fmt.Errorf("attestation: %w", err)
	}
	var statement struct {
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name string `json:"name"`
			} `json:"packages"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(envelope.Payload, &statement); err != nil {
		return fmt.Errorf("attestation payload: %w", err)
	}
	if !strings.HasPrefix(statement.Predicate.SPDXVersion, "SPDX-") || len(statement.Predicate.Packages) == 0 {
		return fmt.Errorf("the SBOM is not an SPDX document that lists packages: %s, version %q, %d packages",
			statement.PredicateType, statement.Predicate.SPDXVersion, len(statement.Predicate.Packages))
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
		WithEnvVariable("BOUND", "docker.io/apache/kafka:3.8.0 docker.io/prom/node-exporter:v1.8.2").
		WithEnvVariable("UNIT", "kafka-"+role).
		WithEnvVariable("NODE", node).
		WithEnvVariable("NODE_ID", fmt.Sprint(id)).
		WithEnvVariable("JMX_JAR", strings.TrimSuffix(jmxJar, "\n")).
		WithExec([]string{"sh", "-c", verify}).
		Sync(ctx)
	return err
}

// Disk makes a cluster CA with ca, builds the controller's disk with
// bootc-image-builder and a node certificate from that CA, and checks it
// with qemu-img: a qcow2 of at least the 20 GiB root size, with bib's
// manifest and the VM scripts beside it, and no private key anywhere but
// inside the disk.
// +cache="never"
func (m *Tests) Disk(ctx context.Context) error {
	const node = "kafka-controller-1"
	kb := cluster("e2e", clusterOpts{})
	// ca is never cached: each evaluation makes a new CA, so take both
	// files from one evaluation, as "ca -o ./ca" does.
	caPath, err := kb.Ca().Export(ctx, "/tmp/ca-"+nonce())
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	caCert, err := os.ReadFile(filepath.Join(caPath, "ca.crt"))
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	caKey, err := os.ReadFile(filepath.Join(caPath, "ca.key"))
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	disks := kb.Disk(node, dagger.KafkaBootcDiskOpts{
		Password: dag.SetSecret("e2e-password-hash", passwordHash),
		CaCert:   dag.Directory().WithNewFile("ca.crt", string(caCert)).File("ca.crt"),
		CaKey:    dag.SetSecret("e2e-ca-key-"+nonce(), string(caKey)),
	})
	for _, p := range []string{node + "/manifest-qcow2.json", "start-vms.sh", "remove-vms.sh"} {
		if _, err := disks.File(p).Size(ctx); err != nil {
			return fmt.Errorf("disk: no %s: %w", p, err)
		}
	}
	// The key's PEM header, as it is and base64-encoded from the start of
	// a file, as bib's manifests hold inline files.
	leaks, err := dag.Container().From(toolsImage).
		WithMountedDirectory("/disks", disks).
		WithExec([]string{"sh", "-c", `grep -rlsI -e "PRIVATE KEY" -e "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t" --exclude=disk.qcow2 /disks || true`}).
		Stdout(ctx)
	if err != nil {
		return fmt.Errorf("disk: looking for keys: %w", err)
	}
	if strings.TrimSpace(leaks) != "" {
		return fmt.Errorf("disk: private keys outside the disk image: %s", leaks)
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

// nodeScript makes a Debian container stand in for a node: a real sshd and
// a real sudo with the role image's sudoers drop-in, the disk user in
// wheel, and stand-ins for bootc, podman and systemctl that answer the
// health probes as a healthy node of a 1+1 cluster would.
const nodeScript = `set -eu
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server sudo openssl >/dev/null
groupadd -f wheel
useradd -m -G wheel kafka
install -d -m 700 -o kafka -g kafka /home/kafka/.ssh
install -m 600 -o kafka -g kafka /e2e/authorized_keys /home/kafka/.ssh/authorized_keys
install -m 440 /e2e/sudoers /etc/sudoers.d/kafka-bootc
visudo -c
mkdir -p /run/sshd
ssh-keygen -A
cat > /usr/bin/bootc <<'EOS'
#!/bin/sh
# bootc's deployments as files: booted, staged, previous; tag is what the
# registry serves under the node's tag.
s=/var/lib/e2e
entry() { echo "{\"image\":{\"image\":{\"image\":\"localhost:5000/e2e/node:latest\",\"transport\":\"registry\"},\"imageDigest\":\"$1\"}}"; }
case "$*" in
"status --format=json")
	staged=null
	if [ -s $s/staged ]; then staged=$(entry "$(cat $s/staged)"); fi
	echo "{\"apiVersion\":\"org.containers.bootc/v1\",\"kind\":\"BootcHost\",\"status\":{\"staged\":$staged,\"booted\":$(entry "$(cat $s/booted)")}}" ;;
upgrade) cp $s/tag $s/staged ;;
rollback) cp $s/previous $s/staged ;;
*) echo "bootc stand-in: $*: not allowed here" >&2; exit 2 ;;
esac
EOS
cat > /usr/bin/systemctl <<'EOS'
#!/bin/sh
# A reboot boots what is staged; sshd, and the connection, stay up.
s=/var/lib/e2e
case "$1" in
is-active) state=$(cat /etc/e2e-unit-state 2>/dev/null || echo active); echo "$state"; [ "$state" = active ] ;;
reboot) if [ -s $s/staged ]; then cp $s/booted $s/previous; mv $s/staged $s/booted; fi ;;
*) exit 1 ;;
esac
EOS
cat > /usr/bin/podman <<'EOS'
#!/bin/sh
case "$*" in
*kafka-metadata-quorum.sh*) printf 'NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n1001  \t812         \t0  \t1795731220412     \t1795731220412        \tLeader  \t\n1     \t812         \t0  \t1795731220395     \t1795731220395        \tObserver\t\n' ;;
*kafka-topics.sh*) ;;
*kafka-broker-api-versions.sh*) printf 'kafka-broker-1:9092 (id: 1 rack: null) -> (\n\tProduce(0): 0 to 11 [usable: 11]\n)\n' ;;
*) echo "podman stand-in: $*" >&2; exit 2 ;;
esac
EOS
chmod 755 /usr/bin/bootc /usr/bin/systemctl /usr/bin/podman
# The certificate that the node's Kafka listener presents, which health
# reads through sshd's forwarding (see nodeService).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
	-subj /CN=e2e-node -keyout /e2e/tls.key -out /e2e/tls.crt 2>/dev/null
`

// Health runs kafka-bootc's health function over SSH against two stand-in
// nodes of a 1+1 cluster, each a real sshd with the role image's sudoers
// drop-in, checked against their host keys; and checks that the drop-in
// lets the disk user run the probes as root, and nothing else.
// +cache="never"
func (m *Tests) Health(ctx context.Context) error {
	keys, identity, err := sshKeys(ctx)
	if err != nil {
		return err
	}
	kb := cluster("e2e", clusterOpts{})
	config := kb.Config()
	// health runs the function against the two nodes, the broker's Kafka
	// unit in the given state.
	health := func(brokerUnit string) (string, error) {
		addresses, knownHosts, err := standInNodes(ctx, keys, config, brokerUnit, digestBefore, digestBefore)
		if err != nil {
			return "", err
		}
		return kb.Running(identity, dagger.KafkaBootcRunningOpts{
			KnownHosts: dag.Directory().WithNewFile("known_hosts", knownHosts).File("known_hosts"),
			Address:    addresses,
			Published:  "kafka-broker-1 localhost:5000/e2e/kafka-broker-1:latest@" + digestBefore,
		}).Health(ctx)
	}
	out, err := health("active")
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	for _, want := range []string{"kafka-broker-1", "observer, lag 0", "leader, lag 0", "yes", "\nhealthy\n"} {
		if !strings.Contains(out, want) {
			return fmt.Errorf("health printed no %q:\n%s", want, out)
		}
	}
	// Each node's certificate, read from its Kafka listener: days left.
	if n := len(regexp.MustCompile(`(?m) 36[0-4]d$`).FindAllString(out, -1)); n != 2 {
		return fmt.Errorf("health shows %d certificate expiries, want 2:\n%s", n, out)
	}
	if _, err := health("failed"); err == nil || !strings.Contains(err.Error(), "kafka-broker-1: the Kafka unit is failed") {
		return fmt.Errorf("health with a failed Kafka unit: %v", err)
	}
	return nil
}

// Digests the stand-in nodes boot, or find under their tags.
const (
	digestBefore = "sha256:736b359467c9437c1ac915acaae952aad854e07eb4a16a94999a48af08c83c34"
	digestAfter  = "sha256:16dc2b6256b4ff0d2ec18d2dbfb06d117904010c8cf9732cdb022818cf7a7566"
)

// standInNodes starts the two stand-in nodes, booted on one digest with
// their tags on another, the broker's Kafka unit in the given state, and
// returns their addresses and known_hosts.
func standInNodes(ctx context.Context, keys, config *dagger.Directory, brokerUnit, booted, tag string) ([]string, string, error) {
	var addresses []string
	var knownHosts strings.Builder
	for _, n := range []struct{ name, role string }{{"kafka-broker-1", "broker"}, {"kafka-controller-1", "controller"}} {
		unit := "active"
		if n.role == "broker" {
			unit = brokerUnit
		}
		node := dag.Container().From(toolsImage).
			WithFile("/e2e/authorized_keys", keys.File("id_ed25519.pub")).
			WithFile("/e2e/sudoers", config.File("kafka-"+n.role+"/etc/sudoers.d/kafka-bootc")).
			WithExec([]string{"sh", "-c", nodeScript}).
			WithNewFile("/etc/e2e-unit-state", unit+"\n").
			WithNewFile("/var/lib/e2e/booted", booted).
			WithNewFile("/var/lib/e2e/tag", tag)
		// The drop-in lets the disk user run exactly the probes as root.
		if _, err := node.WithExec([]string{"su", "kafka", "-c", "sudo -n /usr/bin/bootc status --format=json"}).Sync(ctx); err != nil {
			return nil, "", fmt.Errorf("%s: sudo refuses a probe: %w", n.name, err)
		}
		if _, err := node.WithExec([]string{"su", "kafka", "-c", "sudo -n /usr/bin/bootc upgrade --apply"}).Sync(ctx); err == nil {
			return nil, "", fmt.Errorf("%s: sudo lets the disk user run bootc upgrade", n.name)
		}
		hostKey, err := node.File("/etc/ssh/ssh_host_ed25519_key.pub").Contents(ctx)
		if err != nil {
			return nil, "", err
		}
		svc, err := node.WithExposedPort(22).
			AsService(dagger.ContainerAsServiceOpts{Args: nodeService(map[string]int{"broker": 9092, "controller": 9093}[n.role])}).
			Start(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("%s: sshd: %w", n.name, err)
		}
		endpoint, err := svc.Endpoint(ctx, dagger.ServiceEndpointOpts{Port: 22})
		if err != nil {
			return nil, "", err
		}
		host, _, _ := strings.Cut(endpoint, ":")
		addresses = append(addresses, n.name+"="+endpoint)
		f := strings.Fields(hostKey)
		fmt.Fprintf(&knownHosts, "[%s]:22 %s %s\n", host, f[0], f[1])
	}
	return addresses, knownHosts.String(), nil
}

// nodeService runs a stand-in node: sshd, and on the role's Kafka port a
// TLS listener that presents the node's certificate and asks for a
// client's, as Kafka's does in tls mode.
func nodeService(kafkaPort int) []string {
	return []string{"sh", "-c", fmt.Sprintf("openssl s_server -www -accept %d -cert /e2e/tls.crt -key /e2e/tls.key -Verify 1 >/dev/null 2>&1 & exec /usr/sbin/sshd -D -e", kafkaPort)}
}

// sshKeys makes a key pair for the disk user, fresh for each run: the
// directory holds id_ed25519 and id_ed25519.pub; the secret, the private
// key.
func sshKeys(ctx context.Context) (*dagger.Directory, *dagger.Secret, error) {
	keys := dag.Container().From(toolsImage).
		WithExec([]string{"sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null"}).
		WithEnvVariable("RUN", nonce()).
		WithExec([]string{"sh", "-c", "mkdir /keys && ssh-keygen -q -t ed25519 -N '' -C e2e -f /keys/id_ed25519"}).
		Directory("/keys")
	key, err := keys.File("id_ed25519").Contents(ctx)
	if err != nil {
		return nil, nil, err
	}
	return keys, dag.SetSecret("e2e-ssh-key-"+nonce(), key), nil
}

// Rollout moves two stand-in nodes of a 1+1 cluster, over SSH, from the
// digest they boot to the one their tags point to: the controller first,
// each through its stand-in bootc and reboot, checked by health after;
// then reruns it, which finds both up to date and touches neither.
// +cache="never"
func (m *Tests) Rollout(ctx context.Context) error {
	keys, identity, err := sshKeys(ctx)
	if err != nil {
		return err
	}
	kb := cluster("e2e", clusterOpts{})
	addresses, knownHosts, err := standInNodes(ctx, keys, kb.Config(), "active", digestBefore, digestAfter)
	if err != nil {
		return err
	}
	published := "kafka-broker-1 localhost:5000/e2e/kafka-broker-1:latest@" + digestAfter + "\n" +
		"kafka-controller-1 localhost:5000/e2e/kafka-controller-1:latest@" + digestAfter + "\n"
	hosts := dag.Directory().WithNewFile("known_hosts", knownHosts).File("known_hosts")
	running := kb.Running(identity, dagger.KafkaBootcRunningOpts{KnownHosts: hosts, Address: addresses, Published: published})
	roll := func() (string, error) {
		return running.Rollout(ctx, dagger.KafkaBootcRunningRolloutOpts{Timeout: 60})
	}
	out, err := roll()
	if err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "kafka-controller-1") || !strings.HasSuffix(lines[1], "moved") || !strings.HasSuffix(lines[2], "moved") {
		return fmt.Errorf("rollout did not move the controller, then the broker:\n%s", out)
	}
	after, err := running.Health(ctx)
	if err != nil || strings.Count(after, " yes ") != 2 {
		return fmt.Errorf("health after the rollout: %v\n%s", err, after)
	}
	if out, err := roll(); err != nil || strings.Count(out, "up to date") != 2 {
		return fmt.Errorf("a rerun of a finished rollout: %v\n%s", err, out)
	}
	return nil
}
