package rollout

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/realkafka"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/remote"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { realkafka.Main(m) }

// realNodes serves the cluster's nodes over real sshds, booted into
// first, and returns the SSH transport that running's functions use, and
// the nodes as they reach them.
func realNodes(t *testing.T, cl *realkafka.Cluster, first realkafka.Deployment, c *nodes.Cluster) (*realkafka.Machines, *remote.SSH, []health.Node) {
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
func oneAwayAtATime(t *testing.T, away []realkafka.Interval) {
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
	if _, err := cl.Client(ctx, dir, "/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", cl.C.Bootstrap(), "--command-config", "client.properties",
		"--create", "--topic", "orders", "--replication-factor", "3", "--partitions", "3", "--config", "min.insync.replicas=2"); err != nil {
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
