package rollout

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/sshdtest"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/remote"

	"golang.org/x/crypto/ssh"
)

// dispatch stands in for a node behind a real sshd (its ForceCommand):
// sudo, and bootc, systemctl and podman as the probes and steps call them,
// with bootc's deployments kept in files of the node's state directory
// across calls and reboots.
const dispatch = `#!/bin/sh
s=$(dirname "$0")
eval "set -- $SSH_ORIGINAL_COMMAND"
if [ "$1 $2" = "sudo -n" ]; then shift 2; fi
entry() { printf '{"image":{"image":{"image":"localhost:5000/e2e/node:latest","transport":"registry"},"imageDigest":"%s"}}' "$1"; }
case "$*" in
"/usr/bin/bootc status --format=json")
	staged=null
	if [ -s "$s/staged" ]; then staged=$(entry "$(cat "$s/staged")"); fi
	printf '{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","status":{"staged":%s,"booted":%s}}\n' "$staged" "$(entry "$(cat "$s/booted")")" ;;
"/usr/bin/bootc upgrade") cp "$s/tag" "$s/staged" ;;
"/usr/bin/bootc rollback") cp "$s/previous" "$s/staged" ;;
"/usr/bin/systemctl reboot")
	if [ -s "$s/staged" ]; then cp "$s/booted" "$s/previous"; mv "$s/staged" "$s/booted"; fi
	if [ -f "$s/fail-on-boot" ]; then : >"$s/unit-failed"; fi
	if [ -f "$s/never-back" ]; then
		# Down for good: sshd and every session it serves, this one too.
		p=$(cat "$(cat "$s/pidfile")")
		kill -KILL "$p" $(pgrep -P "$p")
	fi ;;
"/usr/bin/systemctl is-active "*)
	if [ -f "$s/unit-failed" ]; then echo failed; exit 3; fi
	echo active ;;
"/usr/libexec/kafka-bootc/tls "*) shift; exec "$s/tls" "$@" ;;
"/usr/bin/systemctl restart kafka-"*)
	# Kafka starts with the files it finds; one that fails with a new
	# pair stays failed until it starts with its first one again.
	cp "$s/tls-dir/node.pem" "$s/served.pem"
	rm -f "$s/unit-failed"
	if [ -f "$s/fail-with-new" ] && ! cmp -s "$s/tls-dir/node.pem" "$s/first.pem"; then : >"$s/unit-failed"; fi ;;
"/usr/bin/systemctl restart prometheus.service") ;;
*kafka-metadata-quorum.sh*)
	printf 'NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n'
	printf '1001  \t812         \t0  \t1795731220412     \t1795731220412        \tLeader  \t\n'
	printf '1     \t812         \t0  \t1795731220395     \t1795731220395        \tObserver\t\n' ;;
*"kafka-topics.sh --version")
	# The Kafka release of the booted image (digest=version lines).
	v=$(sed -n "s/^$(cat "$s/booted")=//p" "$s/versions" 2>/dev/null)
	if [ -z "$v" ]; then echo "unexpected image" >&2; exit 2; fi
	echo "$v" ;;
*kafka-features.sh*" describe")
	# The cluster's finalized metadata.version, shared by every node.
	if [ ! -f "$s/cluster" ]; then echo "unexpected command: $*" >&2; exit 2; fi
	m=$(cat "$(cat "$s/cluster")/metadata")
	v=$(sed -n "s/^$(cat "$s/booted")=//p" "$s/versions")
	case "$v" in
	4.*) # Kafka 4 lists its other features, and no epoch.
		printf 'Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n'
		printf 'Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n'
		printf 'Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: %s-IV3\tFinalizedVersionLevel: %s\n' "${v%.*}" "$m" ;;
	*) printf 'Feature: metadata.version\tSupportedMinVersion: 3.0-IV1\tSupportedMaxVersion: %s-IV0\tFinalizedVersionLevel: %s\tEpoch: 5\n' "${v%.*}" "$m" ;;
	esac ;;
*kafka-features.sh*" upgrade --metadata "*)
	r=${*##* }
	echo "$r-IV0" >"$(cat "$s/cluster")/metadata"
	printf ' \140metadata\140 flag is deprecated and may be removed in a future release.\n'
	echo "metadata.version was upgraded to 27." ;;
*kafka-topics.sh*) ;;
*kafka-broker-api-versions.sh*) printf 'kafka-broker-1:9092 (id: 1 rack: null) -> (\n)\n' ;;
*) echo "unexpected command: $*" >&2; exit 2 ;;
esac
`

// sshNode is a stand-in node: a real sshd whose commands go to dispatch,
// booted on one digest, its tag on another.
type sshNode struct {
	*sshdtest.Server
	state string
}

func startNode(t *testing.T, booted, tag string) sshNode {
	t.Helper()
	state := t.TempDir()
	os.WriteFile(filepath.Join(state, "dispatch"), []byte(dispatch), 0o755)
	os.WriteFile(filepath.Join(state, "booted"), []byte(booted), 0o644)
	os.WriteFile(filepath.Join(state, "tag"), []byte(tag), 0o644)
	return sshNode{Server: sshdtest.Start(t, "ForceCommand "+filepath.Join(state, "dispatch")), state: state}
}

func (n sshNode) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.state, name))
	return string(b)
}

// overSSH rolls a 1+1 cluster of stand-in nodes through the real SSH
// transport. prepare, when given, sees the nodes before the rollout.
func overSSH(t *testing.T, o Options, prepare func(map[string]sshNode)) (map[string]sshNode, string, error) {
	t.Helper()
	return overSSHWith(t, nodes.Default(), o, prepare, nil)
}

// overSSHWith rolls the 1+1 cluster of s, and then runs then, when given,
// over the same nodes.
func overSSHWith(t *testing.T, s nodes.Spec, o Options, prepare func(map[string]sshNode), then func(health.Runner, *nodes.Cluster, []health.Node, map[string]sshNode)) (map[string]sshNode, string, error) {
	t.Helper()
	s.Brokers, s.Controllers = 1, 1
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]sshNode{}
	var ns []health.Node
	var knownHosts []byte
	_, key := sshdtest.NewKey(t)
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		sn := startNode(t, old, neu)
		// Each server lets in the one key of this test.
		os.WriteFile(filepath.Join(sn.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600)
		os.WriteFile(filepath.Join(sn.state, "pidfile"), []byte(filepath.Join(sn.Dir, "sshd.pid")), 0o644)
		byName[n.Name] = sn
		ns = append(ns, health.Node{Node: n, Host: sn.Addr, Published: neu})
		knownHosts = append(knownHosts, sn.KnownHosts(sn.HostKey)...)
	}
	if prepare != nil {
		prepare(byName)
	}
	run, err := remote.New(remote.Config{User: byName["kafka-broker-1"].ClientUser, PrivateKey: key, KnownHosts: knownHosts, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	out, err := Run(context.Background(), run, c, ns, o)
	if then != nil {
		then(run, c, ns, byName)
	}
	return byName, out, err
}

// TestRolloutOverSSH: the controller, then the broker, staged, rebooted
// and checked through a real sshd, their deployments kept across calls.
func TestRolloutOverSSH(t *testing.T) {
	byName, out, err := overSSH(t, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range byName {
		if got := n.file("booted"); got != neu {
			t.Errorf("%s boots %s after the rollout", name, got)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "kafka-controller-1") || !strings.HasSuffix(lines[2], "moved") {
		t.Errorf("result:\n%s", out)
	}
}

// TestANodeThatNeverComesBackOverSSH: the controller's sshd goes down with
// its reboot and stays down; the rollout gives up after its timeout and
// leaves the broker untouched.
func TestANodeThatNeverComesBackOverSSH(t *testing.T) {
	o := fast
	o.Timeout, o.Poll = 3*time.Second, time.Second
	byName, _, err := overSSH(t, o, func(ns map[string]sshNode) {
		os.WriteFile(filepath.Join(ns["kafka-controller-1"].state, "never-back"), nil, 0o644)
	})
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-controller-1: waiting for booting 16dc2b6256b4: gave up after 3s") {
		t.Fatalf("%v", err)
	}
	if got := byName["kafka-broker-1"].file("booted"); got != old {
		t.Errorf("the broker was touched after the controller was lost: it boots %s", got)
	}
}
