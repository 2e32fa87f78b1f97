package realkafka

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
)

// quorumOf reads the metadata quorum's replication from the first
// controller that runs.
func quorumOf(t *testing.T, cl *Cluster) ([]health.Replica, error) {
	argv, err := probeArgv(cl.C, nodes.Controller, nodes.ProbeQuorum)
	if err != nil {
		return nil, err
	}
	for _, n := range cl.Nodes {
		if n.Role == nodes.Controller && n.Running() {
			out, err := n.Container(ctxFor(t, time.Minute), argv...)
			if err != nil {
				return nil, err
			}
			return health.ParseReplication(out)
		}
	}
	return nil, fmt.Errorf("no controller runs")
}

// voterDirs are the quorum's voters, each with its directory id, and its
// observers' node ids.
func voterDirs(t *testing.T, cl *Cluster) (voters map[int]string, observers []int, err error) {
	quorum, err := quorumOf(t, cl)
	if err != nil {
		return nil, nil, err
	}
	voters = map[int]string{}
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

// waitFor polls check every 2 s until it passes, for at most 3 minutes.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// TestADynamicQuorumFormsWithItsFirstVotersAndTakesBackAWipedController:
// a cluster file with quorum: dynamic, rendered and run unchanged on the
// real 4.4.0:
//   - the controllers start from kafka-bootc's start, which formats them
//     with the first voter set: voters 1001-1003 under the directory ids
//     that the module derives, kraft.version 1, every broker an observer;
//   - a controller restarted keeps its directory id (formatted once);
//   - a controller whose data directory was wiped finds the quorum
//     answering and joins it as an observer under a new directory id,
//     never as the voter that lost its data; Kafka's own remove-controller
//     and add-controller then make it a voter again, with a producer
//     writing throughout and every acknowledged record read back.
func TestADynamicQuorumFormsWithItsFirstVotersAndTakesBackAWipedController(t *testing.T) {
	spec := nodes.Default()
	spec.Quorum = nodes.QuorumDynamic
	spec.Brokers = 2
	cl := Own(t, spec)

	voters, observers, err := voterDirs(t, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.C.Nodes {
		if n.Role == nodes.Controller && voters[n.ID] != cl.C.DirectoryID(n) {
			t.Errorf("%s: voter directory id %q, want the derived %s", n.Name, voters[n.ID], cl.C.DirectoryID(n))
		}
	}
	if len(voters) != 3 || !slices.Equal(observers, []int{1, 2}) {
		t.Errorf("voters %v, observers %v", voters, observers)
	}
	features, err := health.ParseFeatures(tool(t, cl, nodes.Broker, nodes.ProbeFeatures))
	if err != nil || features["kraft.version"].Finalized != "1" {
		t.Errorf("kraft.version %+v, %v", features["kraft.version"], err)
	}
	// health judges it as it judges a static quorum, and says which it is.
	const booted = "sha256:0d1e2f"
	var ns []health.Node
	for _, n := range cl.C.Nodes {
		ns = append(ns, health.Node{Node: n, Host: n.Hostname, Published: booted})
	}
	run := Runner{Cluster: cl, Booted: booted}
	var rep health.Report
	waitFor(t, "a healthy dynamic quorum", func() error {
		rep = health.Check(ctxFor(t, 2*time.Minute), run, cl.C, ns)
		if !rep.Healthy() {
			return fmt.Errorf("%v", rep.Problems)
		}
		return nil
	})
	rep.ReadDetails(ctxFor(t, 2*time.Minute), run, cl.C)
	if table := rep.Table(); !strings.Contains(table, "kraft.version 1 finalized: a dynamic quorum (controller.quorum.bootstrap.servers)") {
		t.Errorf("health:\n%s", table)
	}
	// The same cluster judged by a file that says static.
	static := *cl.C
	static.Dynamic = false
	rep = health.Check(ctxFor(t, 2*time.Minute), run, &static, ns)
	rep.ReadDetails(ctxFor(t, 2*time.Minute), run, &static)
	if !slices.Contains(rep.Problems, health.QuorumModeChange(&static, health.Feature{Finalized: "1"})) {
		t.Errorf("a static file for a dynamic quorum: %v", rep.Problems)
	}
	c3 := cl.Node("kafka-controller-3")
	if !strings.Contains(c3.Log(), "controller-start: no quorum answers: a new cluster, formatting with the first voters") {
		t.Errorf("controller 3 did not say how it formatted:\n%s", c3.Tail(30))
	}

	// A restart: formatted already, the same voter.
	if err := c3.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "controller 3 back as the same voter", func() error {
		v, _, err := voterDirs(t, cl)
		if err == nil && v[1003] != cl.C.DirectoryID(c3.Node) {
			err = fmt.Errorf("voters %v", v)
		}
		return err
	})

	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 10*time.Minute)
	if _, err := cl.Tool(ctx, dir, "kafka-topics.sh", "--create", "--topic", "quorum", "--replication-factor", "2", "--partitions", "2"); err != nil {
		t.Fatal(err)
	}
	client, err := cl.Kafka(dir, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	producer := Produce(client, "quorum")

	// Its disk replaced: the data directory wiped.
	old := cl.C.DirectoryID(c3.Node)
	c3.Stop()
	data := c3.root(filepath.Join(nodes.DataDir, "data"))
	entries, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(data, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := c3.Start(); err != nil {
		t.Fatal(err)
	}
	var fresh string
	waitFor(t, "controller 3 back as an observer", func() error {
		quorum, err := quorumOf(t, cl)
		if err != nil {
			return err
		}
		for _, r := range quorum {
			if r.ID == 1003 && r.Status == "Observer" {
				fresh = r.DirectoryID
				return nil
			}
		}
		return fmt.Errorf("no observer 1003 in %+v", quorum)
	})
	if fresh == old || fresh == "" {
		t.Fatalf("the wiped controller came back under directory id %q (the old one %s)", fresh, old)
	}
	if !strings.Contains(c3.Log(), "controller-start: the quorum answers: joining it as an observer") {
		t.Errorf("controller 3 did not say that it joined:\n%s", c3.Tail(30))
	}

	// Kafka's own tools heal the quorum: the voter that lost its data
	// out, the node under its new directory id in.
	c1 := cl.Node("kafka-controller-1")
	quorumTool := func(n *Node, args ...string) {
		t.Helper()
		argv := append([]string{"/opt/kafka/bin/kafka-metadata-quorum.sh", "--bootstrap-controller", "localhost:9093"}, args...)
		if out, err := n.Container(ctx, argv...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	quorumTool(c1, "--command-config", "/etc/kafka-bootc/client.properties", "remove-controller", "--controller-id", "1003", "--controller-directory-id", old)
	// add-controller reads the node's own configuration (its id, its
	// listener, its directory id) and the client's TLS settings, from one
	// file.
	if out, err := c3.Container(ctx, "sh", "-c", "cat /opt/kafka/config/server.properties /etc/kafka-bootc/client.properties > /tmp/add-controller.properties"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	quorumTool(c3, "--command-config", "/tmp/add-controller.properties", "add-controller")
	waitFor(t, "controller 3 a voter again", func() error {
		v, _, err := voterDirs(t, cl)
		if err == nil && (v[1003] != fresh || len(v) != 3) {
			err = fmt.Errorf("voters %v", v)
		}
		return err
	})

	acked, failed, stall := producer.Stop()
	t.Logf("%d records acknowledged, %d failed, longest stall %s", len(acked), failed, stall)
	consumer, err := cl.Kafka(dir, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	if missing := ReadAll(ctxFor(t, 2*time.Minute), consumer, "quorum", acked); len(missing) > 0 || len(acked) == 0 {
		t.Errorf("%d of %d acknowledged records lost", len(missing), len(acked))
	}
}
