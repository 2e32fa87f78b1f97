package rollout

import (
	"context"
	"strings"
	"testing"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/fakenodes"
	"dagger/kafka-bootc/nodes"
)

// upgradeCluster is the default cluster moving from Kafka 3.8.0 (the old
// image, metadata.version 3.8-IV0) to 4.4.0 (the new one, its tags').
func upgradeCluster(t *testing.T) (*nodes.Cluster, []health.Node, *fakenodes.Cluster) {
	t.Helper()
	_, ns, f := cluster(t)
	s := nodes.Default()
	// An upgrade of a static quorum, which stays static (the fakes answer as one).
	s.Quorum = nodes.QuorumStatic
	s.KafkaImage = "docker.io/apache/kafka:4.4.0"
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ns {
		n, _ := c.Node(ns[i].Name)
		ns[i].Node = n
	}
	f.VersionOf = map[string]string{old: "3.8.0", neu: "4.4.0"}
	f.Metadata = "3.8-IV0"
	for _, n := range f.Nodes {
		n.Version = "3.8.0"
	}
	return c, ns, f
}

func finalizations(f *fakenodes.Cluster) []string {
	var out []string
	for _, s := range f.Steps {
		if strings.Contains(s, ": finalize ") {
			out = append(out, s)
		}
	}
	return out
}

// TestAVersionUpgradeRollsEveryNodeThenFinalizes: the binaries first,
// node by node; metadata.version only once every node runs 4.4.0, on a
// broker, as the last step.
func TestAVersionUpgradeRollsEveryNodeThenFinalizes(t *testing.T) {
	c, ns, f := upgradeCluster(t)
	out, err := Run(context.Background(), f, c, ns, fast)
	if err != nil {
		t.Fatal(err)
	}
	if fin := finalizations(f); len(fin) != 1 || f.Steps[len(f.Steps)-1] != fin[0] || !strings.HasSuffix(fin[0], ": finalize 4.4") {
		t.Errorf("finalizations %v, steps %v", fin, f.Steps)
	}
	if f.Metadata != "4.4-IV0" || !strings.Contains(out, "metadata.version finalized: 3.8-IV0 to 4.4-IV0") {
		t.Errorf("metadata %s:\n%s", f.Metadata, out)
	}
	// A rerun finds nothing to do.
	f.Steps = nil
	if out, err := Run(context.Background(), f, c, ns, fast); err != nil || len(f.Steps) != 0 || strings.Contains(out, "finalized:") {
		t.Errorf("a rerun: %v %v\n%s", err, f.Steps, out)
	}
}

// TestNoFinalizeLeavesTheWayBackOpen, until finalize completes it.
func TestNoFinalizeLeavesTheWayBackOpen(t *testing.T) {
	c, ns, f := upgradeCluster(t)
	o := fast
	o.NoFinalize = true
	out, err := Run(context.Background(), f, c, ns, o)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata != "3.8-IV0" || len(finalizations(f)) != 0 || !strings.Contains(out, "metadata.version stays 3.8-IV0 (--no-finalize)") {
		t.Errorf("metadata %s, steps %v:\n%s", f.Metadata, f.Steps, out)
	}
	out, err = Finalize(context.Background(), f, c, ns, fast)
	if err != nil || f.Metadata != "4.4-IV0" || !strings.Contains(out, "3.8-IV0 to 4.4-IV0") {
		t.Errorf("finalize: %v, %s:\n%s", err, f.Metadata, out)
	}
}

// TestAFailureMidwayLeavesTheClusterUnfinalizedAndARerunFinishes.
func TestAFailureMidwayLeavesTheClusterUnfinalizedAndARerunFinishes(t *testing.T) {
	c, ns, f := upgradeCluster(t)
	f.Nodes["kafka-broker-2"].UnitAfterBoot = "failed"
	if _, err := Run(context.Background(), f, c, ns, fast); err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-2") {
		t.Fatalf("%v", err)
	}
	if f.Metadata != "3.8-IV0" || len(finalizations(f)) != 0 {
		t.Fatalf("finalized after a failure: %s %v", f.Metadata, f.Steps)
	}
	if _, err := Finalize(context.Background(), f, c, ns, fast); err == nil || !strings.Contains(err.Error(), "every node must run Kafka 4.4.0 first: kafka-broker-2's version cannot be read, kafka-broker-3 runs 3.8.0") {
		t.Errorf("finalize on a mixed cluster: %v", err)
	}
	f.Nodes["kafka-broker-2"].Unit, f.Nodes["kafka-broker-2"].UnitAfterBoot = "active", ""
	out, err := Run(context.Background(), f, c, ns, fast)
	if err != nil || f.Metadata != "4.4-IV0" || strings.Count(out, "up to date") != 5 {
		t.Errorf("the rerun: %v, %s:\n%s", err, f.Metadata, out)
	}
}

// TestTheDryRunShowsTheFinalization and changes nothing.
func TestTheDryRunShowsTheFinalization(t *testing.T) {
	c, ns, f := upgradeCluster(t)
	o := fast
	o.DryRun = true
	out, err := Run(context.Background(), f, c, ns, o)
	if err != nil || len(f.Steps) != 0 || !strings.Contains(out, "then: finalize metadata.version 3.8-IV0 to 4.4, once every node runs it") {
		t.Errorf("%v %v:\n%s", err, f.Steps, out)
	}
	o.NoFinalize = true
	if out, _ := Run(context.Background(), f, c, ns, o); !strings.Contains(out, "then: metadata.version stays 3.8-IV0 (--no-finalize)") {
		t.Errorf("with --no-finalize:\n%s", out)
	}
}

// TestNoRolloutBelowAFinalizedMetadataVersion: Kafka 3.8 cannot read
// metadata finalized at 4.4.
func TestNoRolloutBelowAFinalizedMetadataVersion(t *testing.T) {
	_, ns, f := cluster(t)
	s := nodes.Default()
	// An upgrade of a static quorum, which stays static (the fakes answer as one).
	s.Quorum = nodes.QuorumStatic
	s.KafkaImage = "docker.io/apache/kafka:3.8.0"
	c, _ := nodes.Plan(s)
	f.Metadata = "4.4-IV0"
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "metadata.version 4.4-IV0 is finalized, and Kafka 3.8") || len(f.Steps) != 0 {
		t.Errorf("%v %v", err, f.Steps)
	}
}
