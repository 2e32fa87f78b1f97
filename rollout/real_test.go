package rollout

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/realkafka"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
	"dagger/kafka-bootc/remote"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { realkafka.Main(m) }

// realNodes serves the cluster's nodes over real sshds, booted into
// first, and returns the SSH transport that running's functions use, and
// the nodes as they reach them.
func realNodes(t testing.TB, cl *realkafka.Cluster, first realkafka.Deployment, c *nodes.Cluster) (*realkafka.Machines, *remote.SSH, []health.Node) {
	t.Helper()
	m, err := cl.Serve(first)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ssh, err := remote.New(remote.Config{User: m.User, PrivateKey: m.ClientKey, KnownHosts: m.KnownHosts, Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ssh.Close)
	var ns []health.Node
	for _, n := range c.Nodes {
		ns = append(ns, health.Node{Node: n, Host: m.Host(n.Name)})
	}
	return m, ssh, ns
}

// oneAwayAtATime fails the test when two nodes' Kafka were away at the
// same instant.
func oneAwayAtATime(t testing.TB, away []realkafka.Interval) {
	t.Helper()
	for i, a := range away {
		for _, b := range away[i+1:] {
			aTill, bTill := a.Till, b.Till
			if aTill.IsZero() {
				aTill = time.Now()
			}
			if bTill.IsZero() {
				bTill = time.Now()
			}
			if a.From.Before(bTill) && b.From.Before(aTill) {
				t.Errorf("%s and %s were away at once: %s-%s and %s-%s", a.Node, b.Node,
					a.From.Format("15:04:05.000"), aTill.Format("15:04:05.000"), b.From.Format("15:04:05.000"), bTill.Format("15:04:05.000"))
			}
		}
	}
}

// TestAVersionUpgradeRolloutOnTheRealKafkaLosesNoAcknowledgedRecord: a
// 3+3 cluster of the newest 3.x that the tests run, rolled out by Run over
// SSH onto a build of the default Kafka while a producer writes
// throughout (acks=all, idempotent): each node staged, restarted with its
// files and jars replaced and its data kept, controllers first, never two
// nodes away at once; then Run finalizes metadata.version. Every
// acknowledged record reads back, and the longest stretch in which the
// producer could not write is printed.
func TestAVersionUpgradeRolloutOnTheRealKafkaLosesNoAcknowledgedRecord(t *testing.T) {
	from := nodes.Releases()[0]
	spec := nodes.Default()
	spec.Name = "upgrade"
	spec.KafkaImage = "docker.io/apache/kafka:" + from
	spec.Broker.HeapMiB, spec.Controller.HeapMiB = 512, 256
	cl := realkafka.Own(t, spec)
	spec.KafkaImage = nodes.Default().KafkaImage
	// The upgrade keeps the quorum static: a static quorum moves to a
	// dynamic one once every node runs 4.1 or later (a rollout of its own).
	spec.Quorum = nodes.QuorumStatic
	target, err := nodes.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	m, ssh, ns := realNodes(t, cl, realkafka.Deployment{Digest: old, Model: cl.C}, target)
	for i, n := range target.Nodes {
		m.SetTag(n.Name, realkafka.Deployment{Digest: neu, Model: target})
		ns[i].Published = neu
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Tool(ctx, dir, "kafka-topics.sh", "--create", "--topic", "orders", "--replication-factor", "3", "--partitions", "3", "--config", "min.insync.replicas=2"); err != nil {
		t.Fatal(err)
	}
	client, err := cl.Kafka(dir, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	producer := realkafka.Produce(client, "orders")
	time.Sleep(5 * time.Second)

	var log strings.Builder
	start := time.Now()
	out, err := Run(ctx, ssh, target, ns, Options{Timeout: 5 * time.Minute, Poll: 3 * time.Second, Log: io.MultiWriter(&log, testLog{t})})
	took := time.Since(start)
	acked, failed, stall := producer.Stop()
	if err != nil {
		t.Fatalf("%v\n%s", err, cl.Tails(20))
	}
	t.Logf("rollout:\n%s", out)
	if strings.Count(out, " moved") != 6 || !strings.Contains(out, "metadata.version finalized: "+from[:3]) {
		t.Errorf("the rollout's report:\n%s", out)
	}
	for _, n := range cl.Nodes {
		if n.Release() != target.KafkaVersion.String() || m.Booted(n.Name).Digest != neu {
			t.Errorf("%s runs Kafka %s, booted %s", n.Name, n.Release(), m.Booted(n.Name).Digest)
		}
	}
	away := m.Away()
	oneAwayAtATime(t, away)
	if len(away) != 6 {
		t.Errorf("nodes away %d times, want each of the 6 once: %v", len(away), away)
	}
	consumer, err := cl.Kafka(dir, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer rcancel()
	if missing := realkafka.ReadAll(rctx, consumer, "orders", acked); len(missing) > 0 {
		t.Errorf("%d of %d acknowledged records are gone, the first %s", len(missing), len(acked), missing[0])
	}
	if len(acked) < 100 {
		t.Errorf("only %d records acknowledged during the rollout", len(acked))
	}
	fmt.Fprintf(os.Stdout, "rollout of 3+3 real nodes, Kafka %s to %s: %s in all, %s per node; %d records acknowledged, %d not; longest produce stall %s\n",
		from, target.KafkaVersion, took.Round(time.Second), (took / 6).Round(time.Second), len(acked), failed, stall.Round(time.Millisecond))
	slices.SortFunc(away, func(a, b realkafka.Interval) int { return a.From.Compare(b.From) })
	for _, a := range away {
		t.Logf("%s away %s", a.Node, a.Till.Sub(a.From).Round(time.Millisecond))
	}
}

// testLog writes a rollout's progress to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// staticDefault is the default cluster with a static quorum, as
// kafka-bootc built it before quorums were dynamic.
func staticDefault() nodes.Spec {
	s := nodes.Default()
	s.Quorum = nodes.QuorumStatic
	return s
}

// defaultOnRealNodes is the default cluster, static, on the real Kafka, shared by
// this package's tests, served over SSH, every node booted into old and
// its tag on neu; only the brokers are to move (the controllers' target is
// what they run), which is where the cases below happen.
func defaultOnRealNodes(t *testing.T) (*realkafka.Cluster, *realkafka.Machines, *remote.SSH, []health.Node) {
	cl := realkafka.Shared(t, "static", staticDefault())
	m, ssh, ns := realNodes(t, cl, realkafka.Deployment{Digest: old, Model: cl.C}, cl.C)
	for i, n := range cl.C.Nodes {
		m.SetTag(n.Name, realkafka.Deployment{Digest: neu, Model: cl.C})
		ns[i].Published = neu
		if n.Role == nodes.Controller {
			ns[i].Published = old
		}
	}
	return cl, m, ssh, ns
}

// TestANodeThatStopsAnsweringMidRolloutStopsItWithinItsTimeout: the sshd
// of kafka-broker-2 freezes (it accepts connections and never answers)
// once kafka-broker-1 has moved. The rollout stops within its SSH timeout,
// names the node, and leaves every node after it as it was.
func TestANodeThatStopsAnsweringMidRolloutStopsItWithinItsTimeout(t *testing.T) {
	cl, m, ssh, ns := defaultOnRealNodes(t)
	t.Cleanup(func() { m.Thaw("kafka-broker-2") })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var frozeAt time.Time
	freeze := logFunc(func(line string) {
		t.Log(line)
		if line == "kafka-broker-1: done, the cluster is healthy" {
			m.Freeze("kafka-broker-2")
			frozeAt = time.Now()
		}
	})
	_, err := Run(ctx, ssh, cl.C, ns, Options{Timeout: 3 * time.Minute, Poll: 3 * time.Second, Log: freeze})
	if frozeAt.IsZero() {
		t.Fatalf("the rollout stopped before kafka-broker-1 moved: %v", err)
	}
	stopped := time.Since(frozeAt)
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-2") ||
		!strings.Contains(err.Error(), "no answer within 15s") && !strings.Contains(err.Error(), "does not finish the handshake") ||
		!strings.Contains(err.Error(), "kafka-broker-3       736b359467c9   16dc2b6256b4   untouched") {
		t.Errorf("a frozen node: %v", err)
	}
	if stopped > time.Minute {
		t.Errorf("the rollout stopped %s after the node froze, with a 15 s SSH timeout", stopped.Round(time.Second))
	}
	if m.Booted("kafka-broker-1").Digest != neu || m.Booted("kafka-broker-2").Digest != old || m.Booted("kafka-broker-3").Digest != old {
		t.Errorf("after the stop: broker 1 %s, broker 2 %s, broker 3 %s", m.Booted("kafka-broker-1").Digest, m.Booted("kafka-broker-2").Digest, m.Booted("kafka-broker-3").Digest)
	}
	for _, n := range cl.Nodes {
		if !n.Running() {
			t.Errorf("%s's Kafka is down after the stop", n.Name)
		}
	}
}

// TestATopicWhoseReplicationFactorIsItsMinISRStopsTheRolloutOnRealKafka:
// a topic with replication factor 2 and min.insync.replicas 2: the first
// broker that holds it may not restart, and the rollout stops at once,
// naming the partition, with no broker restarted.
func TestATopicWhoseReplicationFactorIsItsMinISRStopsTheRolloutOnRealKafka(t *testing.T) {
	cl, m, ssh, ns := defaultOnRealNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Tool(ctx, dir, "kafka-topics.sh", "--create", "--topic", "ledger", "--replica-assignment", "1:2", "--config", "min.insync.replicas=2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Tool(context.Background(), dir, "kafka-topics.sh", "--delete", "--topic", "ledger")
	})
	start := time.Now()
	_, err = Run(ctx, ssh, cl.C, ns, Options{Timeout: 5 * time.Minute, Poll: 3 * time.Second, Log: testLog{t}})
	if err == nil || !strings.Contains(err.Error(), "rollout stopped at kafka-broker-1: waiting for a safe moment to restart kafka-broker-1: ledger-0: its in-sync replicas") ||
		!strings.Contains(err.Error(), "its replication factor equals its min.insync.replicas") {
		t.Errorf("a topic of replication factor 2 and min ISR 2: %v", err)
	}
	if took := time.Since(start); took > 2*time.Minute {
		t.Errorf("refused after %s, not at once", took.Round(time.Second))
	}
	for _, n := range []string{"kafka-broker-1", "kafka-broker-2", "kafka-broker-3"} {
		if m.Booted(n).Digest != old {
			t.Errorf("%s moved", n)
		}
	}
	for _, a := range m.Away() {
		t.Errorf("%s was taken away", a.Node)
	}
}

// logFunc is a rollout's log that hands each line to a function.
type logFunc func(line string)

func (f logFunc) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		f(line)
	}
	return len(p), nil
}

// TestACARotationOnTheRealKafkaKeepsClientsWriting: a CA rotation as
// docs/operations.md gives it, on real nodes over SSH, with a producer
// that reconnects throughout: the nodes trust the old and the new CA
// (Trust), then get certificates of the new one (Renew), then trust the
// new one alone (Trust). The producer's client presents a certificate of
// the old CA and trusts both during the first two steps, and one of the
// new CA during the last. No acknowledged record is lost, no two nodes are
// away at once, and a client of the old CA is refused at the end.
func TestACARotationOnTheRealKafkaKeepsClientsWriting(t *testing.T) {
	spec := nodes.Default()
	spec.Name = "rotation"
	spec.Controllers = 1
	spec.Broker.HeapMiB, spec.Controller.HeapMiB = 512, 256
	cl := realkafka.Own(t, spec)
	m, ssh, ns := realNodes(t, cl, realkafka.Deployment{Digest: old, Model: cl.C}, cl.C)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	o := Options{Timeout: 5 * time.Minute, Poll: 3 * time.Second, Log: testLog{t}}

	oldDir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Tool(ctx, oldDir, "kafka-topics.sh", "--create", "--topic", "rotation", "--replication-factor", "3", "--partitions", "3", "--config", "min.insync.replicas=2"); err != nil {
		t.Fatal(err)
	}
	newCertPEM, newKeyPEM, err := pki.NewCA("kafka-bootc test CA 2", 365, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(append([]byte{}, cl.CA.CertPEM...), newCertPEM...)
	newCA, err := pki.LoadCA(bundle, newKeyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(oldDir, "ca.crt"), bundle, 0o644)
	client, err := cl.Kafka(oldDir, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	producer := realkafka.Produce(client, "rotation")
	if _, err := Trust(ctx, ssh, cl.C, ns, bundle, o); err != nil {
		t.Fatalf("trusting both CAs: %v", err)
	}
	if _, err := Renew(ctx, ssh, cl.C, ns, newCA, 30, o); err != nil {
		t.Fatalf("renewing from the new CA: %v", err)
	}
	acked, failed, stall := producer.Stop()

	newOnly, err := pki.LoadCA(newCertPEM, newKeyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newDir, err := cl.ClientFilesFrom(newOnly, cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	client, err = cl.Kafka(newDir, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	producer = realkafka.Produce(client, "rotation")
	if _, err := Trust(ctx, ssh, cl.C, ns, newCertPEM, o); err != nil {
		t.Fatalf("trusting the new CA alone: %v", err)
	}
	acked2, failed2, stall2 := producer.Stop()
	oneAwayAtATime(t, m.Away())

	consumer, err := cl.Kafka(newDir, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	all := append(acked, acked2...)
	if missing := realkafka.ReadAll(ctx, consumer, "rotation", all); len(missing) > 0 {
		t.Errorf("%d of %d acknowledged records are gone, the first %s", len(missing), len(all), missing[0])
	}
	if len(acked) < 50 || len(acked2) < 50 {
		t.Errorf("acknowledged %d records during trust and renewal, %d during the last trust", len(acked), len(acked2))
	}
	refused, err := cl.Kafka(oldDir, kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	if err := refused.ProduceSync(ctx, &kgo.Record{Topic: "rotation", Value: []byte("old CA")}).FirstErr(); err == nil {
		t.Error("a client of the old CA still writes after the rotation")
	}
	fmt.Fprintf(os.Stdout, "CA rotation of 1+3 real nodes: %d records acknowledged (%d not), longest stall %s during trust and renewal; %d (%d not), longest stall %s during the last trust\n",
		len(acked), failed, stall.Round(time.Millisecond), len(acked2), failed2, stall2.Round(time.Millisecond))
}

// rolloutUnderLoad rolls the cluster out over SSH from one build to
// another (the same rendering, other digests) while a producer writes to
// a topic of replication factor 3 and min ISR 2, and checks what a user
// relies on: every node moved, every acknowledged record reads back, no
// two nodes away at once. It returns the rollout's time and the longest
// stretch in which the producer could not write.
func rolloutUnderLoad(tb testing.TB, cl *realkafka.Cluster, target *nodes.Cluster, topic, from, to string) (took, stall time.Duration, acked int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	m, ssh, ns := realNodes(tb, cl, realkafka.Deployment{Digest: from, Model: cl.C}, target)
	defer m.Close()
	for i, n := range target.Nodes {
		m.SetTag(n.Name, realkafka.Deployment{Digest: to, Model: target})
		ns[i].Published = to
	}
	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := cl.Tool(ctx, dir, "kafka-topics.sh", "--create", "--if-not-exists", "--topic", topic, "--replication-factor", "3", "--partitions", "3", "--config", "min.insync.replicas=2"); err != nil {
		tb.Fatal(err)
	}
	client, err := cl.Kafka(dir, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	producer := realkafka.Produce(client, topic)
	start := time.Now()
	out, err := Run(ctx, ssh, target, ns, Options{Timeout: 5 * time.Minute, Poll: 3 * time.Second})
	took = time.Since(start)
	records, _, stall := producer.Stop()
	if err != nil {
		tb.Fatalf("%v\n%s", err, cl.Tails(20))
	}
	if strings.Count(out, " moved") != len(cl.Nodes) {
		tb.Errorf("the rollout's report:\n%s", out)
	}
	oneAwayAtATime(tb, m.Away())
	consumer, err := cl.Kafka(dir, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer consumer.Close()
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer rcancel()
	if missing := realkafka.ReadAll(rctx, consumer, topic, records); len(missing) > 0 {
		tb.Errorf("%d of %d acknowledged records are gone, the first %s", len(missing), len(records), missing[0])
	}
	return took, stall, len(records)
}

// TestARolloutOfTheDefaultClusterOnTheRealKafkaLosesNoAcknowledgedRecord:
// the default cluster as an earlier kafka-bootc built it (a static
// quorum) rolled out over SSH onto a new build of the default file
// (dynamic, Kafka 4.4), while a producer writes
// throughout: the rollout raises kraft.version to 1 first, then moves
// every node, at most one away at any instant, onto the dynamic rendering
// (the controllers onto kafka-bootc's start, formatted already); every
// acknowledged record reads back, the voters are in the metadata log with
// their directory ids, health of the new file finds nothing wrong, and
// quorum has nothing to change. The longest stall is printed. It is the
// last test of the shared static cluster: the cluster is dynamic after it.
func TestARolloutOfTheDefaultClusterOnTheRealKafkaLosesNoAcknowledgedRecord(t *testing.T) {
	cl := realkafka.Shared(t, "static", staticDefault())
	spec := nodes.Default() // dynamic: Kafka 4.4
	target, err := nodes.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	took, stall, acked := rolloutUnderLoad(t, cl, target, "new-build", old, neu)
	fmt.Fprintf(os.Stdout, "rollout of the default cluster (3+3) onto a new build, static to dynamic quorum: %s, %d records acknowledged, longest produce stall %s\n",
		took.Round(time.Second), acked, stall.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := realkafka.Runner{Cluster: cl, Booted: neu}
	ns := quorumNodes(target)
	for i := range ns {
		ns[i].Published = neu
	}
	rep := health.Check(ctx, run, target, ns)
	rep.ReadDetails(ctx, run, target)
	if !rep.Healthy() || rep.KRaftVersion.Finalized != "1" {
		t.Errorf("health of the dynamic file: %v\n%s", rep.Problems, rep.Table())
	}
	for _, r := range rep.Quorum {
		if r.Status != "Observer" && (r.DirectoryID == "" || r.DirectoryID == "AAAAAAAAAAAAAAAAAAAAAA") {
			t.Errorf("voter %d has no directory id in the log: %q", r.ID, r.DirectoryID)
		}
	}
	if out, err := Quorum(ctx, run, target, ns, Options{Timeout: time.Minute, Poll: 2 * time.Second}); err != nil || !strings.Contains(out, "nothing to change") {
		t.Errorf("quorum after the move: %v\n%s", err, out)
	}
}

// BenchmarkRolloutOf3Plus3RealNodes: the default cluster on the real Kafka
// rolled out over SSH onto a new build while a producer writes; it
// reports the rollout's seconds, seconds per node and the longest stretch
// in which the producer could not write. Run it with
// go test ./rollout -run '^$' -bench RolloutOf3Plus3 -benchtime 1x.
func BenchmarkRolloutOf3Plus3RealNodes(b *testing.B) {
	cl := realkafka.Own(b, nodes.Default())
	from, to := old, neu
	var total, stall time.Duration
	for range b.N {
		took, s, _ := rolloutUnderLoad(b, cl, cl.C, "bench", from, to)
		total += took
		stall = max(stall, s)
		from, to = to, from
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/rollout")
	b.ReportMetric(total.Seconds()/float64(b.N)/float64(len(cl.Nodes)), "s/node")
	b.ReportMetric(float64(stall.Milliseconds()), "ms-longest-stall")
}
