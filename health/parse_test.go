package health

import (
	"slices"
	"strings"
	"testing"
)

func TestParseBootc(t *testing.T) {
	got, err := ParseBootc([]byte(bootcJSON(current, next)))
	if err != nil {
		t.Fatal(err)
	}
	if got != (Bootc{Booted: current, Staged: next, Image: "quay.io/me/node:latest"}) {
		t.Errorf("parsed %+v", got)
	}
	if got, _ := ParseBootc([]byte(bootcJSON(current, ""))); got.Staged != "" {
		t.Errorf("nothing staged, yet %q", got.Staged)
	}
	for _, bad := range []string{
		`{"kind":"BootcHost","status":{"booted":null}}`,
		`{"kind":"Other"}`,
		`not json`,
	} {
		if _, err := ParseBootc([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestParseReplication(t *testing.T) {
	rs, err := ParseReplication([]byte(replication))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 6 {
		t.Fatalf("%d rows", len(rs))
	}
	want := Replica{ID: 1003, LogEndOffset: 4190, Lag: 23, LastFetch: 1795731212101, LastCaughtUp: 1795731211117, Status: "Follower"}
	if rs[2] != want || rs[0].Status != "Leader" || rs[5].ID != 3 || rs[5].Status != "Observer" {
		t.Errorf("rows %+v", rs)
	}
	// Kafka 3.9 adds a DirectoryId column; a column found by name is
	// skipped, not misread.
	withDir := "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n" +
		"1001  \tpqOmPrrQ9FwQVXsiZaEvKA\t4213        \t0  \t1795731220412     \t1795731220412        \tLeader  \t\n"
	if rs, err := ParseReplication([]byte(withDir)); err != nil || rs[0].LogEndOffset != 4213 || rs[0].ID != 1001 {
		t.Errorf("with DirectoryId: %+v, %v", rs, err)
	}
	for _, bad := range []string{
		"Error while executing: org.apache.kafka.common.errors.TimeoutException\n",
		strings.Replace(replication, "4190", "x", 1),
		strings.Replace(replication, "\tFollower\t\n1     ", "\t\n1     ", 1),
	} {
		if _, err := ParseReplication([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseLiveBrokers(t *testing.T) {
	ids, err := ParseLiveBrokers([]byte(apiVersions(1, 3)))
	if err != nil || len(ids) != 2 || ids[0] != 1 || ids[1] != 3 {
		t.Errorf("%v, %v", ids, err)
	}
	if _, err := ParseLiveBrokers([]byte("Error while executing: TimeoutException\n")); err == nil {
		t.Error("output without brokers accepted")
	}
	// Kafka 4's Node.toString adds the fenced state; a fenced broker is
	// not live.
	kafka4 := "kafka-broker-1:9092 (id: 1 rack: null isFenced: false) -> (\n\tProduce(0): 3 to 12 [usable: 12],\n)\n" +
		"kafka-broker-2:9092 (id: 2 rack: eu-1a isFenced: true) -> (\n)\n" +
		"kafka-broker-3:9092 (id: 3 rack: null isFenced: false) -> (\n)\n"
	if ids, err := ParseLiveBrokers([]byte(kafka4)); err != nil || !slices.Equal(ids, []int{1, 3}) {
		t.Errorf("Kafka 4: %v, %v", ids, err)
	}
}

// TestParseKafka4Output: kafka-topics.sh's Elr fields, kafka-features.sh's
// other features and its missing epoch, and a 4.x version, as Kafka 4
// prints them (TopicCommand and FeatureCommand on 4.0's trunk; the
// features of "kafka-features.sh describe" on a 4.0.0 cluster).
func TestParseKafka4Output(t *testing.T) {
	topics := "\tTopic: orders\tPartition: 0\tLeader: 2\tReplicas: 1,2,3\tIsr: 2,3\tElr: \tLastKnownElr: \n" +
		"\tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 1,2,3\tIsr: 1\tElr: 2\tLastKnownElr: 3\n"
	ps, err := ParsePartitions([]byte(topics))
	if err != nil || len(ps) != 2 || ps[0] != (Partition{"orders", 0, 2, "2,3", "1,2,3"}) || ps[1] != (Partition{"orders", 1, -1, "1", "1,2,3"}) {
		t.Errorf("partitions %+v, %v", ps, err)
	}
	features := "Feature: eligible.leader.replicas.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n" +
		"Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1\n" +
		"Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n" +
		"Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: 4.0-IV3\tFinalizedVersionLevel: 4.0-IV3\n" +
		"Feature: transaction.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 2\tFinalizedVersionLevel: 2\n"
	fs, err := ParseFeatures([]byte(features))
	if err != nil || fs["metadata.version"].Finalized != "4.0-IV3" || fs["kraft.version"].Finalized != "0" || len(fs) != 5 {
		t.Errorf("features %+v, %v", fs, err)
	}
	if Release(fs["metadata.version"].Finalized) != "4.0" {
		t.Errorf("release of 4.0-IV3: %q", Release(fs["metadata.version"].Finalized))
	}
	if v, err := ParseVersion([]byte("4.4.0\n")); err != nil || v != "4.4.0" || Release(v) != "4.4" {
		t.Errorf("version %q, %v", v, err)
	}
}

func TestParsePartitions(t *testing.T) {
	ps, err := ParsePartitions([]byte("Topic: orders\tTopicId: 6r4s2kGXQ8e1RdzAd3H5jA\tPartitionCount: 8\tReplicationFactor: 3\tConfigs: min.insync.replicas=2\n" + underReplicated + unavailable))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 || ps[0] != (Partition{"orders", 0, 1, "1,3", "1,2,3"}) || ps[2] != (Partition{"payments", 2, 3, "3,1", "3,2,1"}) || ps[3] != (Partition{"orders", 7, -1, "", "2"}) {
		t.Errorf("parsed %+v", ps)
	}
	if ps, err := ParsePartitions(nil); err != nil || len(ps) != 0 {
		t.Errorf("no output: %v, %v", ps, err)
	}
	if _, err := ParsePartitions([]byte("\tTopic: t\tPartition: x\tLeader: 1\n")); err == nil {
		t.Error("a bad partition number accepted")
	}
}

// features is "kafka-features.sh describe" as Kafka 3.8.0's FeatureCommand
// prints it, for a cluster finalized at 3.8 (the format string of
// handleDescribe; metadata.version's levels as release names).
const features = "Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 0\tFinalizedVersionLevel: 0\tEpoch: 812\n" +
	"Feature: metadata.version\tSupportedMinVersion: 3.0-IV1\tSupportedMaxVersion: 3.8-IV0\tFinalizedVersionLevel: 3.8-IV0\tEpoch: 812\n"

func TestParseFeaturesReadsMetadataVersion(t *testing.T) {
	f, err := ParseFeatures([]byte(features))
	if err != nil {
		t.Fatal(err)
	}
	mv := f["metadata.version"]
	if mv.Finalized != "3.8-IV0" || mv.SupportedMax != "3.8-IV0" || Release(mv.Finalized) != "3.8" {
		t.Errorf("metadata.version %+v", mv)
	}
	if _, err := ParseFeatures([]byte("Error while executing: timeout\n")); err == nil {
		t.Error("an error reads as features")
	}
}

func TestParseVersionSkipsWhatTheJVMAdds(t *testing.T) {
	for out, want := range map[string]string{
		"3.8.0\n": "3.8.0",
		"Picked up JAVA_TOOL_OPTIONS: -Xmx64m\n4.1.1\n": "4.1.1",
		"3.9.0-SNAPSHOT\n": "3.9.0-SNAPSHOT",
	} {
		if got, err := ParseVersion([]byte(out)); err != nil || got != want {
			t.Errorf("%q: %q, %v", out, got, err)
		}
	}
	if _, err := ParseVersion([]byte("exec: kafka-topics.sh: not found\n")); err == nil {
		t.Error("an error reads as a version")
	}
	if Release("3.8.1") != "3.8" || Release("4.0-IV3") != "4.0" {
		t.Error("Release")
	}
}
