package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
)

// node is a fake node: bootc's deployments, the Kafka unit, and how long
// it stays away after a reboot.
type node struct {
	name                     string
	booted, staged, previous string
	unit                     string
	// unitAfterBoot is the unit's state after the next reboot.
	unitAfterBoot string
	away          int
	// version is the Kafka version the node runs; empty, a node image
	// whose sudoers does not allow reading it.
	version string
}

// fake is a cluster of fake nodes by host, the digests that the nodes'
// tags point to in the registry, and every command that changed a node.
type fake struct {
	nodes  map[string]*node
	tags   map[string]string
	leader int
	urp    string
	steps  []string
	// onStep, when set, runs after every step.
	onStep func(f *fake)
	// versionOf is the Kafka version of each image digest, which a node
	// runs once it boots the image; metadata is the cluster's finalized
	// metadata.version, empty when it cannot be read.
	versionOf map[string]string
	metadata  string
}

const (
	old = "sha256:736b359467c9437c1ac915acaae952aad854e07eb4a16a94999a48af08c83c34"
	neu = "sha256:16dc2b6256b4ff0d2ec18d2dbfb06d117904010c8cf9732cdb022818cf7a7566"
	odd = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
)

func bootcJSON(booted, staged string) string {
	entry := func(d string) string {
		if d == "" {
			return "null"
		}
		return fmt.Sprintf(`{"image":{"image":{"image":"quay.io/me/n:latest","transport":"registry"},"imageDigest":%q}}`, d)
	}
	return fmt.Sprintf(`{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","status":{"staged":%s,"booted":%s}}`, entry(staged), entry(booted))
}

// quorum is describe --replication of the default cluster, everyone caught
// up, as Kafka 3.8 prints it.
func (f *fake) quorum() string {
	var b strings.Builder
	b.WriteString("NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n")
	for _, id := range []int{1001, 1002, 1003} {
		status := "Follower"
		if id == f.leader {
			status = "Leader  "
		}
		fmt.Fprintf(&b, "%-6d\t4213        \t0  \t1795731220412     \t1795731220412        \t%s\t\n", id, status)
	}
	for _, id := range []int{1, 2, 3} {
		fmt.Fprintf(&b, "%-6d\t4213        \t0  \t1795731220412     \t1795731220412        \tObserver\t\n", id)
	}
	return b.String()
}

func (f *fake) Run(_ context.Context, host string, argv []string) ([]byte, error) {
	n := f.nodes[host]
	if n.away > 0 {
		n.away--
		return nil, fmt.Errorf("dial tcp %s:22: connect: connection refused", host)
	}
	cmd := strings.Join(argv, " ")
	step := func(s string) {
		f.steps = append(f.steps, n.name+": "+s)
		if f.onStep != nil {
			f.onStep(f)
		}
	}
	switch {
	case cmd == "sudo -n /usr/bin/bootc status --format=json":
		return []byte(bootcJSON(n.booted, n.staged)), nil
	case strings.HasPrefix(cmd, "/usr/bin/systemctl is-active "):
		if n.unit != "active" {
			return []byte(n.unit + "\n"), errors.New("exit status 3")
		}
		return []byte("active\n"), nil
	case strings.Contains(cmd, "kafka-metadata-quorum.sh"):
		return []byte(f.quorum()), nil
	case strings.Contains(cmd, "--under-replicated-partitions"):
		return []byte(f.urp), nil
	case strings.Contains(cmd, "--unavailable-partitions"):
		return nil, nil
	case strings.Contains(cmd, "kafka-broker-api-versions.sh"):
		return []byte("kafka-broker-1:9092 (id: 1 rack: null) -> (\n)\nkafka-broker-2:9092 (id: 2 rack: null) -> (\n)\nkafka-broker-3:9092 (id: 3 rack: null) -> (\n)\n"), nil
	case strings.HasSuffix(cmd, "/opt/kafka/bin/kafka-topics.sh --version"):
		if n.version == "" {
			return nil, errors.New("sudo: a password is required")
		}
		return []byte(n.version + "\n"), nil
	case strings.Contains(cmd, "kafka-features.sh") && strings.HasSuffix(cmd, " describe"):
		if f.metadata == "" {
			return nil, errors.New("sudo: a password is required")
		}
		if strings.HasPrefix(n.version, "4.") {
			// Kafka 4's describe lists more features than metadata.version,
			// and no epoch (kafka-features.sh describe on 4.0.0).
			return []byte("Feature: eligible.leader.replicas.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n" +
				"Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n" +
				"Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n" +
				"Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: " + n.version[:3] + "-IV3\tFinalizedVersionLevel: " + f.metadata + "\n" +
				"Feature: transaction.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 2\tFinalizedVersionLevel: 0\n"), nil
		}
		return []byte("Feature: metadata.version\tSupportedMinVersion: 3.0-IV1\tSupportedMaxVersion: " + f.metadata + "\tFinalizedVersionLevel: " + f.metadata + "\tEpoch: 7\n"), nil
	case strings.Contains(cmd, "kafka-features.sh") && strings.Contains(cmd, " upgrade --metadata "):
		_, release, _ := strings.Cut(cmd, " upgrade --metadata ")
		f.metadata = release + "-IV0"
		step("finalize " + release)
		if strings.HasPrefix(release, "4.") {
			// 3.9 and 4.x take --metadata, and say it is deprecated.
			return []byte(" `metadata` flag is deprecated and may be removed in a future release.\nmetadata.version was upgraded to 27.\n"), nil
		}
		return []byte("metadata.version was upgraded to 20.\n"), nil
	case cmd == "sudo -n /usr/bin/bootc upgrade":
		n.staged = f.tags[n.name]
		step("stage")
		return nil, nil
	case cmd == "sudo -n /usr/bin/bootc rollback":
		n.staged = n.previous
		step("rollback")
		return nil, nil
	case cmd == "sudo -n /usr/bin/systemctl reboot":
		if n.staged != "" {
			n.previous, n.booted, n.staged = n.booted, n.staged, ""
		}
		if v := f.versionOf[n.booted]; v != "" {
			n.version = v
		}
		if n.unitAfterBoot != "" {
			n.unit = n.unitAfterBoot
		}
		n.away = 2
		step("reboot")
		return nil, errors.New("wait: remote command exited without exit status or exit signal")
	}
	return nil, fmt.Errorf("fake %s: unexpected command %q", host, cmd)
}

// cluster is the default cluster on the old image, every tag on the new
// one, controller 1002 the quorum's leader.
func cluster(t *testing.T) (*nodes.Cluster, []health.Node, *fake) {
	t.Helper()
	c, err := nodes.Plan(nodes.Default())
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{nodes: map[string]*node{}, tags: map[string]string{}, leader: 1002}
	var ns []health.Node
	for _, n := range c.Nodes {
		ns = append(ns, health.Node{Node: n, Host: n.Hostname, Published: neu})
		f.nodes[n.Hostname] = &node{name: n.Name, booted: old, unit: "active"}
		f.tags[n.Name] = neu
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
	for _, s := range f.steps {
		if strings.HasSuffix(s, ": stage") {
			staged = append(staged, strings.TrimSuffix(s, ": stage"))
		}
	}
	want := []string{"kafka-controller-1", "kafka-controller-3", "kafka-controller-2", "kafka-broker-1", "kafka-broker-2", "kafka-broker-3"}
	if strings.Join(staged, " ") != strings.Join(want, " ") {
		t.Errorf("order %v, want %v", staged, want)
	}
	for _, n := range f.nodes {
		if n.booted != neu {
			t.Errorf("%s booted %s", n.name, n.booted)
		}
	}
	if strings.Count(out, "moved") != 6 {
		t.Errorf("result:\n%s", out)
	}
}

func TestARerunResumesAfterAFailureAndSkipsWhatMoved(t *testing.T) {
	c, ns, f := cluster(t)
	f.nodes["kafka-broker-1"].unitAfterBoot = "failed"
	out, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-1: waiting for the Kafka unit") {
		t.Fatalf("a broker whose Kafka fails after the reboot: %v", err)
	}
	if out != "" || !strings.Contains(err.Error(), "kafka-broker-2       736b359467c9   16dc2b6256b4   untouched") {
		t.Errorf("the report does not say what was left untouched:\n%v", err)
	}
	for _, name := range []string{"kafka-broker-2", "kafka-broker-3"} {
		if n := f.nodes[name]; n.booted != old || n.staged != "" {
			t.Errorf("%s was touched after the failure: %+v", name, n)
		}
	}
	// The operator fixes the broker; the rerun moves only the rest.
	f.nodes["kafka-broker-1"].unit = "active"
	f.steps = nil
	out, err = Run(context.Background(), f, c, ns, fast)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.steps, ", "); got != "kafka-broker-2: stage, kafka-broker-2: reboot, kafka-broker-3: stage, kafka-broker-3: reboot" {
		t.Errorf("rerun steps: %s", got)
	}
	if strings.Count(out, "up to date") != 4 {
		t.Errorf("rerun result:\n%s", out)
	}
}

func TestATagThatMovesDuringTheRolloutStopsIt(t *testing.T) {
	c, ns, f := cluster(t)
	f.onStep = func(f *fake) {
		if len(f.steps) == 2 { // the first node rebooted; someone pushes
			for name := range f.tags {
				f.tags[name] = odd
			}
		}
	}
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-controller-3: staged "+odd+", want "+neu+": the tag moved") {
		t.Fatalf("a moved tag: %v", err)
	}
	if f.nodes["kafka-controller-3"].booted != old {
		t.Error("the node was rebooted into an image that is not the target")
	}
}

func TestTheHealthGateWaitsAndGivesUp(t *testing.T) {
	c, ns, f := cluster(t)
	f.onStep = func(f *fake) {
		if len(f.steps) == 2 {
			f.urp = "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,3\tElr: N/A\tLastKnownElr: N/A\n"
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
	f.nodes["kafka-controller-3"].unit = "failed"
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "refusing to start: the cluster is unhealthy") || len(f.steps) != 0 {
		t.Errorf("%v, steps %v", err, f.steps)
	}
}

func TestDryRunPrintsThePlanAndChangesNothing(t *testing.T) {
	c, ns, f := cluster(t)
	f.nodes["kafka-broker-2"].booted = neu
	o := fast
	o.DryRun = true
	out, err := Run(context.Background(), f, c, ns, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.steps) != 0 {
		t.Errorf("a dry run changed %v", f.steps)
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
	f.nodes["kafka-broker-3"].unit = "failed"
	o := fast
	o.DryRun = true
	out, err := Run(context.Background(), f, c, ns, o)
	if err != nil || !strings.HasSuffix(out, "a rollout would refuse to start now: the cluster is unhealthy:\n  kafka-broker-3: the Kafka unit is failed\n") || len(f.steps) != 0 {
		t.Errorf("%v, steps %v:\n%s", err, f.steps, out)
	}
}

func TestRollbackOnlyWhenAsked(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		c, ns, f := cluster(t)
		f.nodes["kafka-controller-1"].unitAfterBoot = "failed"
		o := fast
		o.Rollback = rollback
		_, err := Run(context.Background(), f, c, ns, o)
		if err == nil {
			t.Fatal("a failed node passed")
		}
		got := strings.Join(f.steps, ", ")
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
	f.onStep = func(f *fake) {
		if strings.HasSuffix(f.steps[len(f.steps)-1], "reboot") {
			f.nodes["kafka-controller-1"].away = 1 << 30
		}
	}
	_, err := Run(context.Background(), f, c, ns, fast)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-controller-1: waiting for booting 16dc2b6256b4: gave up after 1m0s: dial tcp kafka-controller-1:22: connect: connection refused") {
		t.Errorf("%v", err)
	}
	if len(f.steps) != 2 {
		t.Errorf("steps after the node was lost: %v", f.steps)
	}
}
