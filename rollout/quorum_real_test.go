package rollout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/realkafka"
	"dagger/kafka-bootc/nodes"
)

// quorumNodes are the nodes of a cluster file as the real-Kafka runner
// reaches them.
func quorumNodes(c *nodes.Cluster) []health.Node {
	var ns []health.Node
	for _, n := range c.Nodes {
		ns = append(ns, health.Node{Node: n, Host: n.Hostname, Published: old})
	}
	return ns
}

// voterDirs reads the quorum's voters, each with its directory id, and its
// observers' ids.
func voterDirs(ctx context.Context, run health.Runner, c *nodes.Cluster) (map[int]string, []int, error) {
	quorum, err := health.ReadQuorum(ctx, run, c, quorumNodes(c))
	if err != nil {
		return nil, nil, err
	}
	voters := map[int]string{}
	var observers []int
	for _, r := range quorum {
		if r.Status == "Observer" {
			observers = append(observers, r.ID)
		} else {
			voters[r.ID] = r.DirectoryID
		}
	}
	slices.Sort(observers)
	return voters, observers, nil
}

func voterIDs(v map[int]string) []int {
	var ids []int
	for id := range v {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// replaceDisk stops a node, wipes its Kafka data directory, as a new disk
// for the same node would hold it, and starts it again. It returns the
// directory.
func replaceDisk(t *testing.T, cl *realkafka.Cluster, n *realkafka.Node) string {
	t.Helper()
	n.Stop()
	data := filepath.Join(cl.Dir, n.Name, "root", nodes.DataDir, "data")
	entries, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(data, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestADynamicQuorumGrowsShrinksAndHealsOnTheRealKafka: a 3+3 cluster
// file with quorum: dynamic, run unchanged on the real 4.4.0, with a
// producer writing throughout (acks=all) and every acknowledged record
// read back at the end:
//   - it forms with its first voters, 1001-1003, under the directory ids
//     that the module derives, kraft.version 1, and health says so;
//   - grown to 5 controllers in the file, the 2 new ones started from
//     their disks join as observers, and Quorum adds them, one at a time:
//     5 voters;
//   - shrunk back to 3 in the file, Quorum removes 1004 and 1005, one at a
//     time: 3 voters, and their machines are retired;
//   - a controller whose data directory was wiped (its disk replaced) comes
//     back as an observer under a new directory id, never as the voter that
//     lost its data, and Quorum replaces that voter with it;
//   - a broker whose data directory was wiped registers again and gets its
//     replicas back from their leaders, until health finds nothing wrong.
func TestADynamicQuorumGrowsShrinksAndHealsOnTheRealKafka(t *testing.T) {
	spec := nodes.Default()
	spec.Name = "dynamic"
	spec.Quorum = nodes.QuorumDynamic
	cl := realkafka.Own(t, spec)
	c3 := cl.C
	run := realkafka.Runner{Cluster: cl, Booted: old}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	o := Options{Timeout: 3 * time.Minute, Poll: 2 * time.Second, Log: testLog{t}}

	voters, observers, err := voterDirs(ctx, run, c3)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c3.Nodes {
		if n.Role == nodes.Controller && voters[n.ID] != c3.DirectoryID(n) {
			t.Errorf("%s: voter directory id %q, want the derived %s", n.Name, voters[n.ID], c3.DirectoryID(n))
		}
	}
	if !slices.Equal(voterIDs(voters), []int{1001, 1002, 1003}) || !slices.Equal(observers, []int{1, 2, 3}) {
		t.Errorf("voters %v, observers %v", voters, observers)
	}
	rep := health.Check(ctx, run, c3, quorumNodes(c3))
	rep.ReadDetails(ctx, run, c3)
	if !rep.Healthy() || !strings.Contains(rep.Table(), "kraft.version 1 finalized: a dynamic quorum") {
		t.Errorf("health of the new cluster: %v\n%s", rep.Problems, rep.Table())
	}
	if out, err := Quorum(ctx, run, c3, quorumNodes(c3), o); err != nil || !strings.Contains(out, "nothing to change") {
		t.Errorf("quorum of the new cluster: %v\n%s", err, out)
	}

	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Tool(ctx, dir, "kafka-topics.sh", "--create", "--topic", "quorum", "--replication-factor", "3", "--partitions", "3", "--config", "min.insync.replicas=2"); err != nil {
		t.Fatal(err)
	}
	client, err := cl.Kafka(dir, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	producer := realkafka.Produce(client, "quorum")

	// Grown to 5: the new controllers' machines start from their disks.
	grown := spec
	grown.Controllers = 5
	c5, err := nodes.Plan(grown)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kafka-controller-4", "kafka-controller-5"} {
		if _, err := cl.AddNode(c5, name); err != nil {
			t.Fatal(err)
		}
	}
	if rep := health.Check(ctx, run, c5, quorumNodes(c5)); !strings.Contains(strings.Join(rep.Problems, "\n"), "run running ... quorum") {
		t.Errorf("health of the grown file names no quorum to run: %v", rep.Problems)
	}
	dry := o
	dry.DryRun = true
	if out, err := Quorum(ctx, run, c5, quorumNodes(c5), dry); err != nil ||
		!strings.Contains(out, "add 1004 as a voter (on kafka-controller-4)") || !strings.Contains(out, "add 1005 as a voter (on kafka-controller-5)") {
		t.Errorf("the plan to grow: %v\n%s", err, out)
	}
	out, err := Quorum(ctx, run, c5, quorumNodes(c5), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, cl.Tails(20))
	}
	t.Logf("grown:\n%s", out)
	if voters, _, err := voterDirs(ctx, run, c5); err != nil || !slices.Equal(voterIDs(voters), []int{1001, 1002, 1003, 1004, 1005}) {
		t.Errorf("voters after growing: %v, %v", voters, err)
	}

	// Shrunk back to 3: the two leave the quorum, then their machines go.
	if out, err = Quorum(ctx, run, c3, quorumNodes(c3), o); err != nil {
		t.Fatalf("%v\n%s", err, cl.Tails(20))
	}
	if !strings.Contains(out, "remove voter 1004 (from kafka-controller-1)") || !strings.Contains(out, "remove voter 1005 (from kafka-controller-1)") {
		t.Errorf("the steps to shrink:\n%s", out)
	}
	t.Logf("shrunk:\n%s", out)
	if voters, _, err := voterDirs(ctx, run, c3); err != nil || !slices.Equal(voterIDs(voters), []int{1001, 1002, 1003}) {
		t.Errorf("voters after shrinking: %v, %v", voters, err)
	}
	for _, name := range []string{"kafka-controller-4", "kafka-controller-5"} {
		cl.Node(name).Stop()
	}

	// A controller's disk replaced: its data directory wiped.
	c := cl.Node("kafka-controller-3")
	old := c3.DirectoryID(c.Node)
	replaceDisk(t, cl, c)
	var fresh string
	if err := o.Wait(ctx, "controller 3 back as an observer", func(ctx context.Context) error {
		quorum, err := health.ReadQuorum(ctx, run, c3, quorumNodes(c3))
		for _, r := range quorum {
			if r.ID == 1003 && r.Status == "Observer" {
				fresh = r.DirectoryID
				return nil
			}
		}
		return fmt.Errorf("no observer 1003: %v", err)
	}); err != nil {
		t.Fatal(err)
	}
	if fresh == old || fresh == "" || !strings.Contains(c.Log(), "controller-start: the quorum answers: joining it as an observer") {
		t.Fatalf("the wiped controller came back under directory id %q (the old one %s)\n%s", fresh, old, c.Tail(20))
	}
	if out, err = Quorum(ctx, run, c3, quorumNodes(c3), o); err != nil {
		t.Fatalf("%v\n%s", err, cl.Tails(20))
	}
	t.Logf("healed:\n%s", out)
	if voters, _, err := voterDirs(ctx, run, c3); err != nil || voters[1003] != fresh || len(voters) != 3 {
		t.Errorf("voters after healing: %v, %v", voters, err)
	}
	if rep := health.Check(ctx, run, c3, quorumNodes(c3)); !rep.Healthy() {
		t.Errorf("health after healing: %v", rep.Problems)
	}

	// A broker's disk replaced: its data directory wiped. It registers
	// again, empty, and its partitions are re-replicated from their
	// leaders until none is under-replicated.
	b := cl.Node("kafka-broker-2")
	bdata := replaceDisk(t, cl, b)
	if err := o.Wait(ctx, "broker 2 back with its partitions re-replicated", func(ctx context.Context) error {
		if rep := health.Check(ctx, run, c3, quorumNodes(c3)); !rep.Healthy() {
			return fmt.Errorf("%v", rep.Problems)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bdata, "quorum-0")); err != nil {
		t.Errorf("broker 2 holds no replica of quorum-0 again: %v", err)
	}

	acked, failed, stall := producer.Stop()
	t.Logf("%d records acknowledged, %d failed, longest stall %s", len(acked), failed, stall)
	consumer, err := cl.Kafka(dir, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	if missing := realkafka.ReadAll(ctx, consumer, "quorum", acked); len(missing) > 0 || len(acked) == 0 {
		t.Errorf("%d of %d acknowledged records lost", len(missing), len(acked))
	}
}
