package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/realkafka"
	"dagger/kafka-bootc/nodes"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { realkafka.Main(m) }

// TestAKafka3ClusterUpgradedNodeByNodeTo4AndFinalizedKeepsEveryRecord: a
// 3+3 cluster of the newest 3.x that the tests run, rolled node by node
// onto the rendering of the default Kafka (each node stopped, its files
// and jars replaced, its data kept, started), controllers first, the
// cluster healthy after each; then Finalize raises metadata.version, and
// every record written before the upgrade reads back after it.
func TestAKafka3ClusterUpgradedNodeByNodeTo4AndFinalizedKeepsEveryRecord(t *testing.T) {
	from, to := nodes.Releases()[0], nodes.Releases()[len(nodes.Releases())-1]
	spec := nodes.Default()
	spec.Name = "upgrade"
	spec.KafkaImage = "docker.io/apache/kafka:" + from
	spec.Broker.HeapMiB, spec.Controller.HeapMiB = 512, 256
	cl := realkafka.Own(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Client(ctx, dir, "/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", cl.C.Bootstrap(), "--command-config", "client.properties",
		"--create", "--topic", "before-upgrade", "--replication-factor", "3", "--partitions", "3", "--config", "min.insync.replicas=2"); err != nil {
		t.Fatal(err)
	}
	producer, err := cl.Kafka(dir, kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	const records = 300
	for i := range records {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "before-upgrade", Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	producer.Close()

	spec.KafkaImage = nodes.Default().KafkaImage
	target, err := nodes.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	var ns []health.Node
	for _, n := range target.Nodes {
		ns = append(ns, health.Node{Node: n, Host: n.Hostname})
	}
	run := realkafka.Runner{Cluster: cl, Booted: neu}
	order := slices.Clone(cl.Nodes)
	slices.SortStableFunc(order, func(a, b *realkafka.Node) int {
		return boolInt(a.Role == nodes.Broker) - boolInt(b.Role == nodes.Broker)
	})
	for _, n := range order {
		if err := n.Upgrade(target); err != nil {
			t.Fatal(err)
		}
		o := Options{Timeout: 4 * time.Minute, Poll: 3 * time.Second}.withDefaults()
		if err := o.Wait(ctx, "the cluster's health after "+n.Name, func(ctx context.Context) error {
			if rep := health.Check(ctx, run, target, ns); !rep.Healthy() {
				return fmt.Errorf("%s", strings.Join(rep.Problems, "; "))
			}
			return nil
		}); err != nil {
			t.Fatalf("%v\n%s", err, cl.Tails(20))
		}
		t.Logf("%s runs Kafka %s; the cluster is healthy", n.Name, n.Release())
	}
	out, err := Finalize(ctx, run, target, ns, Options{Timeout: 4 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "metadata.version finalized: "+from[:3]) || !strings.Contains(out, " to "+to[:3]) {
		t.Errorf("finalize said %q", out)
	}

	consumer, err := cl.Kafka(dir, kgo.ConsumeTopics("before-upgrade"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]bool{}
	for len(seen) < records && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for i := range records {
		if !seen[fmt.Sprintf("r%d", i)] {
			t.Fatalf("record r%d, written before the upgrade, is gone (%d of %d read back)", i, len(seen), records)
		}
	}
}
