// The checks of running nodes, over SSH to stand-in nodes: health and
// rollout.

package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"dagger/tests/internal/dagger"
)

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
