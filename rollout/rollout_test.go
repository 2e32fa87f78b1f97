package rollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/fakenodes"
	"dagger/kafka-bootc/nodes"
)

const (
	old = "sha256:736b359467c9437c1ac915acaae952aad854e07eb4a16a94999a48af08c83c34"
	neu = "sha256:16dc2b6256b4ff0d2ec18d2dbfb06d117904010c8cf9732cdb022818cf7a7566"
	odd = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
)

// cluster is the default cluster on the old image, every tag on the new
// one, controller 1002 the quorum's leader.
func cluster(t *testing.T) (*nodes.Cluster, []health.Node, *fakenodes.Cluster) {
	t.Helper()
	// The fake nodes answer as a static quorum does (kraft.version 0).
	s := nodes.Default()
	s.Quorum = nodes.QuorumStatic
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakenodes.Cluster{Nodes: map[string]*fakenodes.Node{}, Tags: map[string]string{}, Leader: 1002}
	var ns []health.Node
	for _, n := range c.Nodes {
		ns = append(ns, health.Node{Node: n, Host: n.Hostname, Published: neu})
		f.Nodes[n.Hostname] = &fakenodes.Node{Name: n.Name, Booted: old, Unit: "active"}
		f.Tags[n.Name] = neu
	}
	return c, ns, f
}

var fast = Options{Timeout: time.Minute, Poll: time.Second, Sleep: func(context.Context, time.Duration) error { return nil }}

func TestControllersFirstTheLeaderLastThenBrokers(t *testing.T) {
	c, ns, f := cluster(t)
	out, err := Run(context.Background(), f, c, ns, fast)
	if err != nil {
		t.Fatal(err)
	}
	var staged []string
	for _, s := range f.Steps {
		if strings.HasSuffix(s, ": stage") {
			staged = append(staged, strings.TrimSuffix(s, ": stage"))
		}
	}
	want := []string{"kafka-controller-1", "kafka-controller-3", "kafka-controller-2", "kafka-broker-1", "kafka-broker-2", "kafka-broker-3"}
	if strings.Join(staged, " ") != strings.Join(want, " ") {
		t.Errorf("order %v, want %v", staged, want)
	}
	for _, n := range f.Nodes {
		if n.Booted != neu {
			t.Errorf("%s booted %s", n.Name, n.Booted)
		}
	}
	if strings.Count(out, "moved") != 6 {
		t.Errorf("result:\n%s", out)
	}
}

func TestARerunResumesAfterAFailureAndSkipsWhatMoved(t *testing.T) {
	c, ns, f := cluster(t)
	f.Nodes["kafka-broker-1"].UnitAfterBoot = "failed"
	out, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-1: waiting for the Kafka unit") {
		t.Fatalf("a broker whose Kafka fails after the reboot: %v", err)
	}
	if out != "" || !strings.Contains(err.Error(), "kafka-broker-2       736b359467c9   16dc2b6256b4   untouched") {
		t.Errorf("the report does not say what was left untouched:\n%v", err)
	}
	for _, name := range []string{"kafka-broker-2", "kafka-broker-3"} {
		if n := f.Nodes[name]; n.Booted != old || n.Staged != "" {
			t.Errorf("%s was touched after the failure: %+v", name, n)
		}
	}
	// The operator fixes the broker; the rerun moves only the rest.
	f.Nodes["kafka-broker-1"].Unit = "active"
	f.Steps = nil
	out, err = Run(context.Background(), f, c, ns, fast)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Steps, ", "); got != "kafka-broker-2: stage, kafka-broker-2: reboot, kafka-broker-3: stage, kafka-broker-3: reboot" {
		t.Errorf("rerun steps: %s", got)
	}
	if strings.Count(out, "up to date") != 4 {
		t.Errorf("rerun result:\n%s", out)
	}
}

func TestATagThatMovesDuringTheRolloutStopsIt(t *testing.T) {
	c, ns, f := cluster(t)
	f.OnStep = func(f *fakenodes.Cluster) {
		if len(f.Steps) == 2 { // the first node rebooted; someone pushes
			for name := range f.Tags {
				f.Tags[name] = odd
			}
		}
	}
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-controller-3: staged "+odd+", want "+neu+": the tag moved") {
		t.Fatalf("a moved tag: %v", err)
	}
	if f.Nodes["kafka-controller-3"].Booted != old {
		t.Error("the node was rebooted into an image that is not the target")
	}
}

func TestTheHealthGateWaitsAndGivesUp(t *testing.T) {
	c, ns, f := cluster(t)
	f.OnStep = func(f *fakenodes.Cluster) {
		if len(f.Steps) == 2 {
			f.URP = "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,3\tElr: N/A\tLastKnownElr: N/A\n"
		}
	}
	slept := 0
	o := fast
	o.Sleep = func(context.Context, time.Duration) error { slept++; return nil }
	_, err := Run(context.Background(), f, c, ns, o)
	if err == nil || !strings.Contains(err.Error(), "waiting for the cluster's health: gave up after 1m0s: partitions: 1 under-replicated") {
		t.Fatalf("a gate that never opens: %v", err)
	}
	if slept < 50 {
		t.Errorf("gave up after %d polls of a 1 s poll in a 1 min timeout", slept)
	}
}

func TestAnUnhealthyClusterIsNotTouched(t *testing.T) {
	c, ns, f := cluster(t)
	f.Nodes["kafka-controller-3"].Unit = "failed"
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "refusing to start: the cluster is unhealthy") || len(f.Steps) != 0 {
		t.Errorf("%v, steps %v", err, f.Steps)
	}
}

func TestDryRunPrintsThePlanAndChangesNothing(t *testing.T) {
	c, ns, f := cluster(t)
	f.Nodes["kafka-broker-2"].Booted = neu
	o := fast
	o.DryRun = true
	out, err := Run(context.Background(), f, c, ns, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Steps) != 0 {
		t.Errorf("a dry run changed %v", f.Steps)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[3], "kafka-controller-2") ||
		!strings.Contains(lines[5], "kafka-broker-2       16dc2b6256b4   16dc2b6256b4   up to date") ||
		!strings.Contains(lines[1], "736b359467c9   16dc2b6256b4   would move") {
		t.Errorf("plan:\n%s", out)
	}
}

func TestDryRunSaysWhenARolloutWouldRefuse(t *testing.T) {
	c, ns, f := cluster(t)
	f.Nodes["kafka-broker-3"].Unit = "failed"
	o := fast
	o.DryRun = true
	out, err := Run(context.Background(), f, c, ns, o)
	if err != nil || !strings.HasSuffix(out, "a rollout would refuse to start now: the cluster is unhealthy:\n  kafka-broker-3: the Kafka unit is failed\n") || len(f.Steps) != 0 {
		t.Errorf("%v, steps %v:\n%s", err, f.Steps, out)
	}
}

func TestRollbackOnlyWhenAsked(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		c, ns, f := cluster(t)
		f.Nodes["kafka-controller-1"].UnitAfterBoot = "failed"
		o := fast
		o.Rollback = rollback
		_, err := Run(context.Background(), f, c, ns, o)
		if err == nil {
			t.Fatal("a failed node passed")
		}
		got := strings.Join(f.Steps, ", ")
		want := "kafka-controller-1: stage, kafka-controller-1: reboot"
		if rollback {
			want += ", kafka-controller-1: rollback, kafka-controller-1: reboot"
		}
		if got != want || strings.Contains(err.Error(), "rolled back") != rollback {
			t.Errorf("rollback %v: steps %s; %v", rollback, got, err)
		}
	}
}

func TestEveryNodeNeedsATarget(t *testing.T) {
	c, ns, f := cluster(t)
	ns[4].Published = ""
	if _, err := Run(context.Background(), f, c, ns, fast); err == nil || !strings.Contains(err.Error(), "kafka-controller-2: no target image") {
		t.Errorf("%v", err)
	}
}

func TestANodeThatNeverComesBackHitsTheTimeout(t *testing.T) {
	c, ns, f := cluster(t)
	f.OnStep = func(f *fakenodes.Cluster) {
		if strings.HasSuffix(f.Steps[len(f.Steps)-1], "reboot") {
			f.Nodes["kafka-controller-1"].Away = 1 << 30
		}
	}
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-controller-1: waiting for booting 16dc2b6256b4: gave up after 1m0s: dial tcp kafka-controller-1:22: connect: connection refused") {
		t.Errorf("%v", err)
	}
	if len(f.Steps) != 2 {
		t.Errorf("steps after the node was lost: %v", f.Steps)
	}
}

func TestAStuckStepEndsWithinTheTimeoutNamingTheNode(t *testing.T) {
	c, ns, f := cluster(t)
	f.Hang = "bootc upgrade"
	o := fast
	o.Timeout = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() { _, err := Run(context.Background(), f, c, ns, o); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-controller-1: staging: /usr/bin/bootc upgrade: no end within 300ms") {
			t.Errorf("a bootc upgrade that never ends: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a rollout whose bootc upgrade never ends did not stop")
	}
	for _, n := range f.Nodes {
		if n.Booted != old || n.Boots != 0 {
			t.Errorf("%s changed: %+v", n.Name, n)
		}
	}
}

func TestRollbackLeavesANodeThatNeverMovedAlone(t *testing.T) {
	c, ns, f := cluster(t)
	// The tag moves before the first node stages: it fails while staging.
	for name := range f.Tags {
		f.Tags[name] = odd
	}
	o := fast
	o.Rollback = true
	_, err := Run(context.Background(), f, c, ns, o)
	if err == nil || !strings.Contains(err.Error(), "not rolled back: it still runs 736b359467c9, with 000000000000 staged for its next boot") {
		t.Errorf("a failure while staging: %v", err)
	}
	if got := strings.Join(f.Steps, ", "); got != "kafka-controller-1: stage" {
		t.Errorf("steps %s: a node that never moved was rolled back or rebooted", got)
	}
}

func TestRollbackNeverRestartsANodeWhileAnotherIsAway(t *testing.T) {
	c, ns, f := cluster(t)
	f.Nodes["kafka-controller-1"].UnitAfterBoot = "failed"
	f.OnStep = func(f *fakenodes.Cluster) {
		if strings.HasSuffix(f.Steps[len(f.Steps)-1], "reboot") {
			f.Nodes["kafka-broker-3"].Unit = "failed"
		}
	}
	o := fast
	o.Rollback = true
	_, err := Run(context.Background(), f, c, ns, o)
	if err == nil || !strings.Contains(err.Error(), "not rolled back FAILED: kafka-broker-3 is away too; restarting kafka-controller-1 now would take a second node down") {
		t.Errorf("%v", err)
	}
	if got := strings.Join(f.Steps, ", "); got != "kafka-controller-1: stage, kafka-controller-1: reboot" {
		t.Errorf("steps %s", got)
	}
}

func TestANodeIsNotRestartedWhenAnotherWentAwayWhileItStaged(t *testing.T) {
	c, ns, f := cluster(t)
	f.OnStep = func(f *fakenodes.Cluster) {
		if f.Steps[len(f.Steps)-1] == "kafka-broker-2: stage" {
			f.Nodes["kafka-broker-1"].Unit = "failed"
		}
	}
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-2: waiting for a safe moment to restart kafka-broker-2: gave up after 1m0s: kafka-broker-1: the Kafka unit is failed") {
		t.Errorf("%v", err)
	}
	if n := f.Nodes["kafka-broker-2"]; n.Boots != 0 {
		t.Errorf("kafka-broker-2 rebooted while kafka-broker-1 was down")
	}
}

func TestABrokerThatHoldsAPartitionAtMinISRWaitsThenStops(t *testing.T) {
	c, ns, f := cluster(t)
	f.AtMinISR = "\tTopic: orders\tPartition: 3\tLeader: 2\tReplicas: 1,2,3\tIsr: 2,1\tElr: \tLastKnownElr: \n"
	slept := 0
	o := fast
	o.Sleep = func(context.Context, time.Duration) error { slept++; return nil }
	_, err := Run(context.Background(), f, c, ns, o)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-1: waiting for a safe moment to restart kafka-broker-1: gave up after 1m0s: orders-3: its in-sync replicas 2,1 are its min.insync.replicas; with broker 1 away, producers with acks=all are refused") {
		t.Errorf("%v", err)
	}
	if slept < 50 || f.Nodes["kafka-broker-1"].Boots != 0 {
		t.Errorf("slept %d, broker 1 booted %d times", slept, f.Nodes["kafka-broker-1"].Boots)
	}
	// Every controller moved: none holds a partition.
	for _, name := range []string{"kafka-controller-1", "kafka-controller-2", "kafka-controller-3"} {
		if f.Nodes[name].Booted != neu {
			t.Errorf("%s did not move", name)
		}
	}
}

func TestATopicWhoseReplicationFactorIsItsMinISRStopsTheRolloutAtOnce(t *testing.T) {
	c, ns, f := cluster(t)
	f.AtMinISR = "\tTopic: ledger\tPartition: 0\tLeader: 3\tReplicas: 3,2\tIsr: 3,2\tElr: \tLastKnownElr: \n"
	slept := 0
	o := fast
	o.Sleep = func(context.Context, time.Duration) error { slept++; return nil }
	_, err := Run(context.Background(), f, c, ns, o)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-2: waiting for a safe moment to restart kafka-broker-2: ledger-0: its in-sync replicas 3,2 are its min.insync.replicas") ||
		!strings.Contains(err.Error(), "its replication factor equals its min.insync.replicas") {
		t.Errorf("%v", err)
	}
	// Broker 1 holds no replica of it and moved; broker 2 waited no longer
	// than the look that found it.
	if f.Nodes["kafka-broker-1"].Booted != neu || f.Nodes["kafka-broker-2"].Boots != 0 || slept > 12 {
		t.Errorf("broker 1 %s, broker 2 booted %d times, slept %d", f.Nodes["kafka-broker-1"].Booted, f.Nodes["kafka-broker-2"].Boots, slept)
	}
}

func TestAChangedControllerSetIsRefusedNamingBothVoterSets(t *testing.T) {
	c, ns, f := cluster(t)
	f.Voters = []int{1001, 1002, 1003, 1004, 1005}
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "refusing to start") ||
		!strings.Contains(err.Error(), "the running voters are 1001,1002,1003,1004,1005, the cluster file's controllers are 1001,1002,1003") || len(f.Steps) != 0 {
		t.Errorf("%v, steps %v", err, f.Steps)
	}
}

// TestNodeImagesWithoutTheMinISRProbeStillRollOut: the brokers of a
// cluster built before the probe of partitions at min ISR existed refuse
// it (their sudoers drop-in lacks it); the rollout that brings it goes on
// with the health gate alone, and says so.
func TestNodeImagesWithoutTheMinISRProbeStillRollOut(t *testing.T) {
	c, ns, f := cluster(t)
	f.Refuse = "--at-min-isr-partitions"
	var log strings.Builder
	o := fast
	o.Log = &log
	if _, err := Run(context.Background(), f, c, ns, o); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes {
		if n.Booted != neu {
			t.Errorf("%s booted %s", n.Name, n.Booted)
		}
	}
	if !strings.Contains(log.String(), "kafka-broker-1: the brokers' node images predate the probe of partitions at min ISR") {
		t.Errorf("the log does not say so:\n%s", log.String())
	}
}

// TestAStaticQuorumMovesToDynamicOnlyFrom41: a cluster file with quorum:
// dynamic for a running static quorum (kraft.version 0, as Kafka 4's tool
// prints it) is a rollout that raises kraft.version first, as the dry run
// says; with a node on Kafka 4.0 it is refused before anything moves,
// naming the node. (The move itself runs on the real Kafka:
// TestAStaticQuorumMovesToDynamicOnTheRealKafka.)
func TestAStaticQuorumMovesToDynamicOnlyFrom41(t *testing.T) {
	_, ns, f := cluster(t)
	for _, n := range f.Nodes {
		n.Version = "4.4.0"
	}
	f.Metadata = "4.4-IV2"
	s := nodes.Default()
	s.Quorum = nodes.QuorumDynamic
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	dry := fast
	dry.DryRun = true
	if out, err := Run(context.Background(), f, c, ns, dry); err != nil || !strings.HasPrefix(out, "first: raise kraft.version to 1 (the static quorum becomes dynamic)") ||
		strings.Contains(out, "refus") || len(f.Steps) != 0 {
		t.Errorf("dry run: %v %v\n%s", err, f.Steps, out)
	}
	f.Nodes["kafka-broker-2"].Version = "4.0.0"
	_, err = Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "moving it needs Kafka 4.1 or later on every node, and kafka-broker-2 runs 4.0.0") || len(f.Steps) != 0 {
		t.Errorf("%v, steps %v", err, f.Steps)
	}
}
