package rollout

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
)

// upgradeOverSSH moves a 1+1 cluster of stand-in nodes behind real sshd
// servers from Kafka 3.8.0 (the booted images, metadata.version 3.8-IV0)
// to 4.4.0 (the images their tags point to, and the cluster file's).
// prepare, when given, sees the nodes first; then runs after the rollout.
func upgradeOverSSH(t *testing.T, o Options, prepare func(map[string]sshNode), then func(health.Runner, *nodes.Cluster, []health.Node, map[string]sshNode)) (metadata func() string, byName map[string]sshNode, out string, err error) {
	t.Helper()
	shared := t.TempDir()
	os.WriteFile(filepath.Join(shared, "metadata"), []byte("3.8-IV0\n"), 0o644)
	s := nodes.Default()
	// An upgrade of a static quorum, which stays static (the fakes answer as one).
	s.Quorum = nodes.QuorumStatic
	s.KafkaImage = "docker.io/apache/kafka:4.4.0"
	byName, out, err = overSSHWith(t, s, o, func(ns map[string]sshNode) {
		for _, n := range ns {
			os.WriteFile(filepath.Join(n.state, "versions"), []byte(old+"=3.8.0\n"+neu+"=4.4.0\n"), 0o644)
			os.WriteFile(filepath.Join(n.state, "cluster"), []byte(shared), 0o644)
		}
		if prepare != nil {
			prepare(ns)
		}
	}, then)
	return func() string {
		b, _ := os.ReadFile(filepath.Join(shared, "metadata"))
		return strings.TrimSpace(string(b))
	}, byName, out, err
}

// TestAVersionUpgradeOverSSHFinalizesAtTheEnd: both nodes move to 4.4.0
// through real sshd servers, then metadata.version is raised with
// kafka-features.sh, whose deprecation notice on 4.x is no failure.
func TestAVersionUpgradeOverSSHFinalizesAtTheEnd(t *testing.T) {
	metadata, byName, out, err := upgradeOverSSH(t, fast, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range byName {
		if got := n.file("booted"); got != neu {
			t.Errorf("%s boots %s", name, got)
		}
	}
	if metadata() != "4.4-IV0" || !strings.Contains(out, "metadata.version finalized: 3.8-IV0 to 4.4-IV0") {
		t.Errorf("metadata.version %s:\n%s", metadata(), out)
	}
}

// TestNoFinalizeOverSSHThenFinalize: --no-finalize leaves 3.8-IV0, and
// finalize raises it later.
func TestNoFinalizeOverSSHThenFinalize(t *testing.T) {
	o := fast
	o.NoFinalize = true
	var finalized string
	var ferr error
	metadata, _, out, err := upgradeOverSSH(t, o, nil, func(run health.Runner, c *nodes.Cluster, ns []health.Node, _ map[string]sshNode) {
		if got := metadataOf(t, run, c, ns); got != "3.8-IV0" {
			t.Errorf("metadata.version %s despite --no-finalize", got)
		}
		finalized, ferr = Finalize(context.Background(), run, c, ns, fast)
	})
	if err != nil || !strings.Contains(out, "metadata.version stays 3.8-IV0 (--no-finalize)") {
		t.Fatalf("%v:\n%s", err, out)
	}
	if ferr != nil || metadata() != "4.4-IV0" || !strings.Contains(finalized, "3.8-IV0 to 4.4-IV0") {
		t.Errorf("finalize: %v, %s:\n%s", ferr, metadata(), finalized)
	}
}

// TestAFailedUpgradeOverSSHStaysUnfinalizedAndARerunFinishes: the broker's
// Kafka fails after its reboot; metadata.version stays, and a rerun once
// it starts again moves nothing twice and finalizes.
func TestAFailedUpgradeOverSSHStaysUnfinalizedAndARerunFinishes(t *testing.T) {
	var rerun string
	var rerr error
	metadata, _, _, err := upgradeOverSSH(t, fast, func(ns map[string]sshNode) {
		os.WriteFile(filepath.Join(ns["kafka-broker-1"].state, "fail-on-boot"), nil, 0o644)
	}, func(run health.Runner, c *nodes.Cluster, ns []health.Node, byName map[string]sshNode) {
		if got := metadataOf(t, run, c, ns); got != "3.8-IV0" {
			t.Errorf("metadata.version %s after a failure", got)
		}
		// The broker's Kafka starts again: the operator fixed it.
		b := byName["kafka-broker-1"]
		os.Remove(filepath.Join(b.state, "fail-on-boot"))
		os.Remove(filepath.Join(b.state, "unit-failed"))
		rerun, rerr = Run(context.Background(), run, c, ns, fast)
	})
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-1") {
		t.Fatalf("%v", err)
	}
	if rerr != nil || metadata() != "4.4-IV0" || strings.Count(rerun, "up to date") != 2 {
		t.Errorf("the rerun: %v, %s:\n%s", rerr, metadata(), rerun)
	}
}

// metadataOf reads the finalized metadata.version from the cluster's
// broker, as health does.
func metadataOf(t *testing.T, run health.Runner, c *nodes.Cluster, ns []health.Node) string {
	t.Helper()
	for _, n := range ns {
		if n.Role != nodes.Broker {
			continue
		}
		out, err := health.RunProbe(context.Background(), run, c, n, nodes.ProbeFeatures)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := health.ParseFeatures(out)
		if err != nil {
			t.Fatal(err)
		}
		return fs["metadata.version"].Finalized
	}
	t.Fatal("no broker")
	return ""
}
