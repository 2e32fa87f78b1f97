package health

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/internal/realkafka"
	"dagger/kafka-bootc/nodes"
)

var updateReal = flag.Bool("update-real", false, "capture testdata/real/ anew from the real Kafka's tools")

func TestMain(m *testing.M) { realkafka.Main(m) }

// realCluster is the default cluster on the real Kafka, shared by this
// package's tests.
func realCluster(t *testing.T) (*realkafka.Cluster, realkafka.Runner, []Node) {
	cl := realkafka.Shared(t, "default", nodes.Default())
	var ns []Node
	for _, n := range cl.C.Nodes {
		ns = append(ns, Node{Node: n, Host: n.Hostname, Published: current})
	}
	return cl, realkafka.Runner{Cluster: cl, Booted: current}, ns
}

func realCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// admin runs one of Kafka's tools as the admin client, from the clients'
// namespace.
func admin(t *testing.T, cl *realkafka.Cluster, tool string, args ...string) string {
	t.Helper()
	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cl.Tool(realCtx(t), dir, tool, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// waitHealthy waits until Check finds nothing wrong.
func waitHealthy(t *testing.T, run Runner, c *nodes.Cluster, ns []Node) Report {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rep := Check(realCtx(t), run, c, ns)
		if rep.Healthy() || time.Now().After(deadline) {
			return rep
		}
		time.Sleep(3 * time.Second)
	}
}

// TestCheckOnTheRealKafka: health.Check reads a live cluster with the real
// tools' output: healthy; a stopped broker is reported as such, and the
// partitions it held are counted as under-replicated on their leaders;
// healthy again once it is back.
func TestCheckOnTheRealKafka(t *testing.T) {
	cl, run, ns := realCluster(t)
	rep := waitHealthy(t, run, cl.C, ns)
	if !rep.Healthy() {
		t.Fatalf("a live default cluster: %v\n%s", rep.Problems, rep.Table())
	}
	if rep.Leader < 1001 || !slices.Equal(rep.Voters, []int{1001, 1002, 1003}) || rep.ClusterID != cl.C.ID {
		t.Errorf("leader %d, voters %v, cluster id %q (want %s)", rep.Leader, rep.Voters, rep.ClusterID, cl.C.ID)
	}
	// The same nodes judged by a cluster file whose name changed, and with
	// it the derived cluster id.
	renamed := nodes.Default()
	renamed.Name = "renamed"
	other, err := nodes.Plan(renamed)
	if err != nil {
		t.Fatal(err)
	}
	if rep := Check(realCtx(t), run, other, ns); !strings.Contains(strings.Join(rep.Problems, "\n"), "cluster id: the running cluster's is "+cl.C.ID+", the cluster file's "+other.ID) {
		t.Errorf("a renamed cluster file: %v", rep.Problems)
	}
	// And by one that renumbered a broker.
	renumbered := nodes.Default()
	renumbered.BrokerIDs = []int{1, 2, 7}
	if other, err = nodes.Plan(renumbered); err != nil {
		t.Fatal(err)
	}
	if rep := Check(realCtx(t), run, other, ns); !strings.Contains(strings.Join(rep.Problems, "\n"), "brokers: the running cluster's brokers are 1,2,3, the cluster file's are 1,2,7") {
		t.Errorf("a renumbered cluster file: %v", rep.Problems)
	}
	rep.ReadDetails(realCtx(t), run, cl.C)
	if rep.MetadataVersion.Finalized == "" || rep.Rows[0].Version != cl.Dist().Version {
		t.Errorf("details: metadata.version %+v, version %q", rep.MetadataVersion, rep.Rows[0].Version)
	}
	// The default cluster's quorum is dynamic: kraft.version 1.
	if kv := rep.KRaftVersion; kv.Finalized != "1" ||
		!strings.Contains(rep.Table(), "kraft.version 1 finalized: a dynamic quorum (controller.quorum.bootstrap.servers)") {
		t.Errorf("kraft.version %+v\n%s", kv, rep.Table())
	}

	admin(t, cl, "kafka-topics.sh", "--create", "--topic", "check-urp", "--replication-factor", "3", "--partitions", "6")
	b3 := cl.Node("kafka-broker-3")
	b3.Stop()
	t.Cleanup(func() {
		if !b3.Running() {
			b3.Start()
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep = Check(realCtx(t), run, cl.C, ns)
		problems := strings.Join(rep.Problems, "\n")
		if strings.Contains(problems, "partitions: 6 under-replicated") || time.Now().After(deadline) {
			break
		}
		time.Sleep(3 * time.Second)
	}
	problems := strings.Join(rep.Problems, "\n")
	for _, want := range []string{"kafka-broker-3: the Kafka unit is inactive", "kafka-broker-3: node 3 is not a live broker", "partitions: 6 under-replicated"} {
		if !strings.Contains(problems, want) {
			t.Errorf("broker 3 stopped: no %q in\n%s", want, problems)
		}
	}
	urp := 0
	for _, r := range rep.Rows {
		if r.Role == nodes.Broker && r.URP > 0 {
			urp += r.URP
		}
	}
	if urp < 6 {
		t.Errorf("under-replicated partitions counted on their leaders: %d, want at least the topic's 6\n%s", urp, rep.Table())
	}

	if err := b3.Start(); err != nil {
		t.Fatal(err)
	}
	if rep := waitHealthy(t, run, cl.C, ns); !rep.Healthy() {
		t.Errorf("broker 3 back: %v", rep.Problems)
	}
}

// TestTheParsersReadTheRealToolsOutput: the output of every probe, as the
// real tools print it, captured into testdata/real/<release>/ by
// -update-real from a live cluster (the default one, and a 1+1 cluster of
// the oldest release the tests run), with broker 3 stopped so that
// partitions are under-replicated and one is without a leader.
func TestTheParsersReadTheRealToolsOutput(t *testing.T) {
	releases := []string{nodes.Releases()[0], nodes.Releases()[len(nodes.Releases())-1]}
	if *updateReal {
		for _, v := range releases {
			captureReal(t, v)
		}
	}
	for _, v := range releases {
		t.Run(v, func(t *testing.T) {
			read := func(probe string) []byte {
				b, err := os.ReadFile(filepath.Join("testdata", "real", v, strings.ReplaceAll(probe, " ", "-")+".txt"))
				if err != nil {
					t.Fatalf("%v: capture it with go test ./health -run RealTools -update-real", err)
				}
				return b
			}
			quorum, err := ParseReplication(read(nodes.ProbeQuorum))
			if err != nil {
				t.Fatal(err)
			}
			var voters, observers []int
			for _, r := range quorum {
				if r.Status == "Observer" {
					observers = append(observers, r.ID)
				} else {
					voters = append(voters, r.ID)
				}
			}
			slices.Sort(voters)
			slices.Sort(observers)
			if len(voters) == 0 || voters[0] != 1001 || len(observers) == 0 || observers[0] != 1 {
				t.Errorf("quorum: voters %v, observers %v", voters, observers)
			}
			live, err := ParseLiveBrokers(read(nodes.ProbeLiveBrokers))
			if err != nil || len(live) == 0 {
				t.Errorf("live brokers %v, %v", live, err)
			}
			urp, err := ParsePartitions(read(nodes.ProbeUnderReplicated))
			if err != nil || len(urp) == 0 || urp[0].Topic != "orders" || urp[0].Replicas == "" {
				t.Errorf("under-replicated partitions %+v, %v", urp, err)
			}
			offline, err := ParsePartitions(read(nodes.ProbeUnavailable))
			if err != nil || len(offline) == 0 || offline[0].Leader != -1 {
				t.Errorf("unavailable partitions %+v, %v", offline, err)
			}
			atMin, err := ParsePartitions(read(nodes.ProbeAtMinISR))
			if err != nil || len(atMin) == 0 || atMin[0].Topic != "orders" {
				t.Errorf("partitions at min ISR %+v, %v", atMin, err)
			}
			features, err := ParseFeatures(read(nodes.ProbeFeatures))
			if err != nil || Release(features["metadata.version"].Finalized) != Release(v) {
				t.Errorf("features %+v, %v", features, err)
			}
			// Both releases know kraft.version (3.9 and later): 0 for a
			// static quorum, 1 for a dynamic one.
			if kv := features["kraft.version"]; kv.Finalized != "0" && kv.Finalized != "1" || kv.SupportedMax != "1" {
				t.Errorf("kraft.version %+v", kv)
			}
			if got, err := ParseVersion(read(nodes.ProbeVersion)); err != nil || got != v {
				t.Errorf("version %q, %v", got, err)
			}
		})
	}
}

// captureReal starts a 3+3 cluster of the release (with small heaps for
// a release other than the default's), makes
// topics whose partitions lose replicas when broker 3 or broker 1 stops,
// stops it, and writes every probe's output.
func captureReal(t *testing.T, version string) {
	spec := nodes.Default()
	spec.KafkaImage = "docker.io/apache/kafka:" + version
	if spec.KafkaImage != nodes.Default().KafkaImage {
		spec.Name = "capture-" + strings.ReplaceAll(version, ".", "-")
		spec.Broker.HeapMiB, spec.Controller.HeapMiB = 384, 256
	}
	cl := realkafka.Own(t, spec)
	admin(t, cl, "kafka-topics.sh", "--create", "--topic", "orders", "--replication-factor", "3", "--partitions", "3", "--config", "min.insync.replicas=2")
	admin(t, cl, "kafka-topics.sh", "--create", "--topic", "solo", "--replica-assignment", "3")
	cl.Node("kafka-broker-3").Stop()
	time.Sleep(15 * time.Second)
	dir := filepath.Join("testdata", "real", version)
	os.MkdirAll(dir, 0o755)
	probes := map[nodes.Role][]string{
		nodes.Controller: {nodes.ProbeQuorum, nodes.ProbeVersion},
		nodes.Broker:     {nodes.ProbeUnderReplicated, nodes.ProbeUnavailable, nodes.ProbeAtMinISR, nodes.ProbeLiveBrokers, nodes.ProbeFeatures},
	}
	for role, names := range probes {
		n := cl.Nodes[0]
		for _, node := range cl.Nodes {
			if node.Role == role && node.Running() {
				n = node
				break
			}
		}
		for _, name := range names {
			p, _ := cl.C.Probe(role, name)
			out, err := n.Container(realCtx(t), p.Argv[3:]...)
			if err != nil {
				t.Fatalf("%s on %s: %v", name, n.Name, err)
			}
			if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".txt"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(os.Stderr, "captured %s %s from %s\n", version, name, n.Name)
		}
	}
}
