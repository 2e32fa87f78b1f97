package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"dagger/kafka-bootc/nodes"
)

// bootcJSON is "bootc status --format=json" of a node that booted one
// image and staged another, in bootc's host-v1 schema.
func bootcJSON(booted, staged string) string {
	entry := func(digest string) string {
		if digest == "" {
			return "null"
		}
		return fmt.Sprintf(`{"image":{"image":{"image":"quay.io/me/node:latest","transport":"registry"},"version":"stream9","timestamp":null,"imageDigest":%q,"architecture":"amd64"},"cachedUpdate":null,"incompatible":false,"pinned":false,"downloadOnly":false,"store":"ostreeContainer","ostree":{"stateroot":"default","checksum":"26836632adf6228d64ef07a26fd3efaf177104efd1f341a2cf7909a3e4e2c72c","deploySerial":0}}`, digest)
	}
	return fmt.Sprintf(`{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","metadata":{"name":"host"},"spec":{"image":{"image":"quay.io/me/node:latest","transport":"registry"},"bootOrder":"default"},"status":{"staged":%s,"booted":%s,"rollback":null,"rollbackQueued":false,"type":"bootcHost"}}`,
		entry(staged), entry(booted))
}

// replication is "kafka-metadata-quorum.sh describe --replication" as
// Kafka 3.8 prints it: ToolsUtils.prettyPrintTable pads each value to its
// column's width and ends it with a tab. 1003 last caught up 9 s after the
// leader (a voter that fell behind), broker 3 lags by one record.
const replication = "NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n" +
	"1001  \t4213        \t0  \t1795731220412     \t1795731220412        \tLeader  \t\n" +
	"1002  \t4213        \t0  \t1795731220230     \t1795731220230        \tFollower\t\n" +
	"1003  \t4190        \t23 \t1795731212101     \t1795731211117        \tFollower\t\n" +
	"1     \t4213        \t0  \t1795731220395     \t1795731220395        \tObserver\t\n" +
	"2     \t4213        \t0  \t1795731220388     \t1795731220388        \tObserver\t\n" +
	"3     \t4212        \t1  \t1795731220301     \t1795731220301        \tObserver\t\n"

// underReplicated is "kafka-topics.sh --describe --under-replicated-partitions"
// as Kafka 3.8 prints it (PartitionDescription.printDescription).
const underReplicated = "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,3\tElr: N/A\tLastKnownElr: N/A\n" +
	"\tTopic: orders\tPartition: 4\tLeader: 1\tReplicas: 2,1,3\tIsr: 1,3\tElr: N/A\tLastKnownElr: N/A\n" +
	"\tTopic: payments\tPartition: 2\tLeader: 3\tReplicas: 3,2,1\tIsr: 3,1\tElr: N/A\tLastKnownElr: N/A\n"

// apiVersions is "kafka-broker-api-versions.sh" as Kafka 3.8 prints it
// for the given brokers: Node.toString, " -> ", then NodeApiVersions
// .toString(true), cut short here.
func apiVersions(ids ...int) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "kafka-broker-%d:9092 (id: %d rack: null) -> (\n\tProduce(0): 0 to 11 [usable: 11],\n\tFetch(1): 0 to 16 [usable: 16],\n\tListOffsets(2): 0 to 8 [usable: 8]\n)\n", id, id)
	}
	return b.String()
}

const unavailable = "\tTopic: orders\tPartition: 7\tLeader: none\tReplicas: 2\tIsr: \tElr: N/A\tLastKnownElr: N/A\n"

// fakeNode is a node as the fake runner serves it.
type fakeNode struct {
	down                               bool
	booted, staged, unit               string
	quorum, urp, unavailable, bootcErr string
	// status is describe --status; empty, a node image without the probe.
	status string
	live   string
	// version is what the node's Kafka tools print with --version.
	version string
}

// clientConfig is what the Kafka tools of the default (TLS) cluster are
// given after the bootstrap address.
const clientConfig = " --command-config /etc/kafka-bootc/client.properties"

// fake runs the probes against fake nodes, by host. It refuses any other
// command, and root probes that do not go through sudo -n.
type fake map[string]*fakeNode

func (f fake) Run(_ context.Context, host string, argv []string) ([]byte, error) {
	n := f[host]
	if n == nil || n.down {
		return nil, fmt.Errorf("dial tcp %s:22: connect: no route to host", host)
	}
	cmd := strings.Join(argv, " ")
	switch {
	case cmd == "sudo -n /usr/bin/bootc status --format=json":
		if n.bootcErr != "" {
			return nil, errors.New(n.bootcErr)
		}
		return []byte(bootcJSON(n.booted, n.staged)), nil
	case strings.HasPrefix(cmd, "/usr/bin/systemctl is-active kafka-"):
		if n.unit != "active" {
			return []byte(n.unit + "\n"), errors.New("exit status 3")
		}
		return []byte("active\n"), nil
	case cmd == "sudo -n /usr/bin/podman exec kafka-controller /opt/kafka/bin/kafka-metadata-quorum.sh --bootstrap-controller localhost:9093"+clientConfig+" describe --status":
		if n.status == "" {
			return nil, errors.New("sudo: a password is required")
		}
		return []byte(n.status), nil
	case strings.HasPrefix(cmd, "sudo -n /usr/bin/podman exec kafka-controller /opt/kafka/bin/kafka-metadata-quorum.sh --bootstrap-controller localhost:9093"+clientConfig+" describe --replication"):
		return []byte(n.quorum), nil
	case cmd == "sudo -n /usr/bin/podman exec kafka-broker /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092"+clientConfig+" --describe --under-replicated-partitions":
		return []byte(n.urp), nil
	case cmd == "sudo -n /usr/bin/podman exec kafka-broker /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092"+clientConfig+" --describe --unavailable-partitions":
		return []byte(n.unavailable), nil
	case cmd == "sudo -n /usr/bin/podman exec kafka-broker /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092"+clientConfig:
		return []byte(n.live), nil
	case strings.HasPrefix(cmd, "sudo -n /usr/bin/podman exec kafka-") && strings.HasSuffix(cmd, " /opt/kafka/bin/kafka-topics.sh --version"):
		if n.version == "" {
			return nil, errors.New("sudo: a password is required")
		}
		return []byte(n.version + "\n"), nil
	case cmd == "sudo -n /usr/bin/podman exec kafka-broker /opt/kafka/bin/kafka-features.sh --bootstrap-server localhost:9092"+clientConfig+" describe":
		return []byte(features), nil
	}
	return nil, fmt.Errorf("fake %s: unexpected command %q", host, cmd)
}

const (
	current = "sha256:736b359467c9437c1ac915acaae952aad854e07eb4a16a94999a48af08c83c34"
	next    = "sha256:16dc2b6256b4ff0d2ec18d2dbfb06d117904010c8cf9732cdb022818cf7a7566"
)

// healthyQuorum is replication with every voter caught up.
var healthyQuorum = strings.Replace(replication, "1795731211117", "1795731220100", 1)

// cluster is the default cluster, every node healthy and booted on the
// published image.
func cluster(t *testing.T) (*nodes.Cluster, []Node, fake) {
	t.Helper()
	// The fakes answer as a static quorum does (kraft.version 0).
	s := nodes.Default()
	s.Quorum = nodes.QuorumStatic
	c, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	f := fake{}
	var ns []Node
	for _, n := range c.Nodes {
		ns = append(ns, Node{Node: n, Host: n.Hostname, Published: current})
		f[n.Hostname] = &fakeNode{booted: current, unit: "active", quorum: healthyQuorum, live: apiVersions(1, 2, 3), version: "3.8.0"}
	}
	return c, ns, f
}

// check reads the fake cluster as the health function does: the checks,
// then the details it shows.
func check(t *testing.T, c *nodes.Cluster, ns []Node, f fake) Report {
	t.Helper()
	rep := Check(context.Background(), f, c, ns)
	rep.ReadDetails(context.Background(), f, c)
	return rep
}

func TestAHealthyClusterIsHealthy(t *testing.T) {
	c, ns, f := cluster(t)
	rep := check(t, c, ns, f)
	if !rep.Healthy() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Leader != 1001 {
		t.Errorf("leader %d, want 1001", rep.Leader)
	}
	table := rep.Table()
	checkRows(t, table, map[string]string{
		"NODE":               "ROLE ID BOOTED STAGED PUBLISHED KAFKA VERSION QUORUM URP CERT",
		"kafka-broker-1":     "broker 1 736b359467c9 - yes active 3.8.0 observer, lag 0 0 -",
		"kafka-controller-1": "controller 1001 736b359467c9 - yes active 3.8.0 leader, lag 0 - -",
		"kafka-controller-3": "controller 1003 736b359467c9 - yes active 3.8.0 follower, lag 23 - -",
	})
	if !strings.HasSuffix(table, "\nhealthy\n") {
		t.Errorf("table does not end in healthy:\n%s", table)
	}
}

// checkRows checks the table's row of each node, by its fields.
func checkRows(t *testing.T, table string, want map[string]string) {
	t.Helper()
	for node, w := range want {
		if got := rowOf(table, node); got != w {
			t.Errorf("%s: row %q, want %q:\n%s", node, got, w, table)
		}
	}
}

// rowOf returns the fields after the first of the table's line for node,
// joined by single spaces.
func rowOf(table, node string) string {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == node {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

func TestEachProblemMakesTheClusterUnhealthy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breaks func(f fake)
		want   string
	}{
		{"a node that does not answer", func(f fake) { f["kafka-broker-2"].down = true },
			"kafka-broker-2: dial tcp kafka-broker-2:22: connect: no route to host"},
		{"a node without bootc", func(f fake) { f["kafka-broker-3"].bootcErr = "sudo: a password is required" },
			"kafka-broker-3: sudo: a password is required"},
		{"a failed Kafka unit", func(f fake) { f["kafka-controller-2"].unit = "failed" },
			"kafka-controller-2: the Kafka unit is failed"},
		{"a voter behind the leader", func(f fake) {
			for _, n := range f {
				n.quorum = replication
			}
		}, "kafka-controller-3: behind the quorum leader by 23 records (last caught up 9295 ms after the leader's)"},
		{"a quorum without a leader", func(f fake) {
			for _, n := range f {
				n.quorum = strings.Replace(healthyQuorum, "Leader  ", "Follower", 1)
			}
		}, "metadata quorum: no leader"},
		{"a broker that fetches no metadata", func(f fake) {
			for _, n := range f {
				n.quorum = strings.Replace(healthyQuorum, "2     \t4213        \t0  \t1795731220388     \t1795731220388        \tObserver\t\n", "", 1)
			}
		}, "kafka-broker-2: node 2 does not fetch the cluster's metadata (no observer of the quorum)"},
		{"no controller to ask", func(f fake) {
			for _, name := range []string{"kafka-controller-1", "kafka-controller-2", "kafka-controller-3"} {
				f[name].unit = "inactive"
			}
		}, "metadata quorum: cannot be read: no controller with an active Kafka unit to ask"},
		{"a fenced broker", func(f fake) {
			for _, n := range f {
				n.live = apiVersions(1, 2)
			}
		}, "kafka-broker-3: node 3 is not a live broker (not registered, or fenced)"},
		{"under-replicated partitions", func(f fake) {
			for _, n := range f {
				n.urp = underReplicated
			}
		}, "partitions: 3 under-replicated"},
		{"a partition without a leader", func(f fake) {
			for _, n := range f {
				n.unavailable = unavailable
			}
		}, "partitions: 1 without a leader on a live broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ns, f := cluster(t)
			tc.breaks(f)
			rep := check(t, c, ns, f)
			if rep.Healthy() {
				t.Fatal("reported healthy")
			}
			found := false
			for _, p := range rep.Problems {
				found = found || p == tc.want
			}
			if !found {
				t.Errorf("problems %q lack %q", rep.Problems, tc.want)
			}
			if !strings.Contains(rep.Table(), "unhealthy:\n  "+tc.want) && len(rep.Problems) == 1 {
				t.Errorf("table does not say it:\n%s", rep.Table())
			}
		})
	}
}

func TestTheQuorumIsReadFromTheNextControllerWhenOneFails(t *testing.T) {
	c, ns, f := cluster(t)
	f["kafka-controller-1"].quorum = "Error while executing: org.apache.kafka.common.errors.TimeoutException\n"
	rep := check(t, c, ns, f)
	if !rep.Healthy() || rep.Leader != 1001 {
		t.Errorf("problems %v, leader %d", rep.Problems, rep.Leader)
	}
}

func TestURPsCountOnTheirLeader(t *testing.T) {
	c, ns, f := cluster(t)
	for _, n := range f {
		n.urp = underReplicated
	}
	urp := map[string]int{}
	for _, r := range check(t, c, ns, f).Rows {
		urp[r.Name] = r.URP
	}
	if urp["kafka-broker-1"] != 2 || urp["kafka-broker-2"] != 0 || urp["kafka-broker-3"] != 1 || urp["kafka-controller-1"] != -1 {
		t.Errorf("URPs per node %v", urp)
	}
}

func TestPublishedSaysWhetherTheNodeRunsOrStagedThePublishedImage(t *testing.T) {
	c, ns, f := cluster(t)
	f["kafka-broker-1"].booted, f["kafka-broker-1"].staged = next, current
	f["kafka-broker-2"].booted = next
	ns[2].Published = ""
	rep := check(t, c, ns, f)
	if !rep.Healthy() {
		t.Fatalf("an outdated node is not unhealthy: %v", rep.Problems)
	}
	table := rep.Table()
	checkRows(t, table, map[string]string{
		"kafka-broker-1": "broker 1 16dc2b6256b4 736b359467c9 staged active 3.8.0 observer, lag 0 0 -",
		"kafka-broker-2": "broker 2 16dc2b6256b4 - no active 3.8.0 observer, lag 0 0 -",
		"kafka-broker-3": "broker 3 736b359467c9 - - active 3.8.0 observer, lag 1 0 -",
	})
}

// TestHealthShowsVersionsAndTheFinalizedMetadataVersion: each node's Kafka
// version, the cluster's metadata.version, and a mix of versions named; a
// node image that does not allow the version probe yet is not unhealthy.
func TestHealthShowsVersionsAndTheFinalizedMetadataVersion(t *testing.T) {
	c, ns, f := cluster(t)
	f["kafka-controller-1"].version = "3.9.1"
	f["kafka-broker-3"].version = ""
	rep := check(t, c, ns, f)
	if !rep.Healthy() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	table := rep.Table()
	if rowOf(table, "kafka-controller-1") != "controller 1001 736b359467c9 - yes active 3.9.1 leader, lag 0 - -" ||
		rowOf(table, "kafka-broker-3") != "broker 3 736b359467c9 - yes active - observer, lag 1 0 -" {
		t.Errorf("versions:\n%s", table)
	}
	for _, want := range []string{
		"\nmetadata.version 3.8-IV0 finalized; the binaries support up to 3.8-IV0\n",
		"\nKafka versions differ: 3.8.0 on kafka-broker-1, kafka-broker-2, kafka-controller-2, kafka-controller-3; 3.9.1 on kafka-controller-1\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// TestCheckLeavesTheDetailsToReadDetails: the checks that the rollouts'
// gates poll between two nodes read no version, certificate or
// metadata.version; ReadDetails does.
func TestCheckLeavesTheDetailsToReadDetails(t *testing.T) {
	c, ns, f := cluster(t)
	rep := Check(context.Background(), f, c, ns)
	for _, r := range rep.Rows {
		if r.Version != "" || r.Cert != nil {
			t.Errorf("%s: Check read its version %q or certificate", r.Name, r.Version)
		}
	}
	if rep.MetadataVersion.Finalized != "" {
		t.Errorf("Check read metadata.version")
	}
	rep.ReadDetails(context.Background(), f, c)
	if rep.Rows[0].Version != "3.8.0" || rep.MetadataVersion.Finalized != "3.8-IV0" {
		t.Errorf("ReadDetails: %q %q", rep.Rows[0].Version, rep.MetadataVersion.Finalized)
	}
}

// TestAChangedControllerSetIsUnhealthyNamingBothVoterSets: the checks
// judge the running quorum's voters against the cluster file's
// controllers, both ways. A file that lost two controllers (5 running
// voters, 3 in the file) and one that gained two (3 running, 5 in the
// file) are both reported, with both sets.
func TestAChangedControllerSetIsUnhealthyNamingBothVoterSets(t *testing.T) {
	five := healthyQuorum +
		"1004  \t4213        \t0  \t1795731220230     \t1795731220230        \tFollower\t\n" +
		"1005  \t4213        \t0  \t1795731220230     \t1795731220230        \tFollower\t\n"
	c, ns, f := cluster(t)
	for _, n := range f {
		n.quorum = five
	}
	rep := check(t, c, ns, f)
	want := "metadata quorum: the running voters are 1001,1002,1003,1004,1005, the cluster file's controllers are 1001,1002,1003"
	if rep.Healthy() || !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
		t.Errorf("a file with fewer controllers than the quorum: %v", rep.Problems)
	}

	spec := nodes.Default()
	spec.Controllers = 5
	grown, err := nodes.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	var gns []Node
	for _, n := range grown.Nodes {
		gns = append(gns, Node{Node: n, Host: n.Hostname, Published: current})
		if f[n.Hostname] == nil {
			// The new controllers run, as observers of the old quorum.
			f[n.Hostname] = &fakeNode{booted: current, unit: "active", quorum: healthyQuorum, live: apiVersions(1, 2, 3), version: "3.8.0"}
		}
	}
	for _, n := range f {
		n.quorum = healthyQuorum
	}
	rep = check(t, grown, gns, f)
	want = "metadata quorum: the running voters are 1001,1002,1003, the cluster file's controllers are 1001,1002,1003,1004,1005"
	if rep.Healthy() || !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
		t.Errorf("a file with more controllers than the quorum: %v", rep.Problems)
	}
	if !slices.Equal(rep.Voters, []int{1001, 1002, 1003}) {
		t.Errorf("voters %v", rep.Voters)
	}
	// Each controller's place in the quorum: the new ones are in none yet.
	table := rep.Table()
	if got := rowOf(table, "kafka-controller-4"); !strings.HasSuffix(got, " not in quorum - -") {
		t.Errorf("controller 4: %q\n%s", got, table)
	}
	if got := rowOf(table, "kafka-controller-1"); !strings.Contains(got, " leader, lag 0 ") {
		t.Errorf("controller 1: %q\n%s", got, table)
	}
}

// TestAnotherClusterIDIsNamed: a cluster file whose cluster id is not the
// running cluster's (a renamed cluster) makes the cluster unhealthy,
// naming both ids; a node image without the status probe leaves the id
// unread, and the cluster healthy.
func TestAnotherClusterIDIsNamed(t *testing.T) {
	c, ns, f := cluster(t)
	if rep := Check(context.Background(), f, c, ns); !rep.Healthy() || rep.ClusterID != "" {
		t.Errorf("without the probe: %v, id %q", rep.Problems, rep.ClusterID)
	}
	// describe --status as Kafka 4.4.0 prints it (health/testdata/real).
	status := func(id string) string {
		return "ClusterId:              " + id + "\nLeaderId:               1001\nLeaderEpoch:            3\nHighWatermark:          1234\n"
	}
	for _, n := range f {
		n.status = status(c.ID)
	}
	if rep := Check(context.Background(), f, c, ns); !rep.Healthy() || rep.ClusterID != c.ID {
		t.Errorf("the same id: %v, id %q", rep.Problems, rep.ClusterID)
	}
	for _, n := range f {
		n.status = status("MkU3OEVBNTcwNTJENDM2Qg")
	}
	rep := Check(context.Background(), f, c, ns)
	want := "cluster id: the running cluster's is MkU3OEVBNTcwNTJENDM2Qg, the cluster file's " + c.ID
	if rep.Healthy() || !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
		t.Errorf("another id: %v", rep.Problems)
	}
}

// TestRenumberedBrokersAreNamed: the quorum as the real 4.4.0 tool prints
// it (voters 1001-1003, brokers 1-3 observing) judged against cluster
// files. Brokers renumbered is a change no running cluster takes, named
// with both sets; a broker only added (not yet running) or only retired
// is not. Ids swapped between the roles are the voter set's change
// (VoterSetChange), since an observer with a controller's id may be a
// controller not yet added to the quorum.
func TestRenumberedBrokersAreNamed(t *testing.T) {
	out, err := os.ReadFile("testdata/real/4.4.0/metadata-quorum.txt")
	if err != nil {
		t.Fatal(err)
	}
	quorum, err := ParseReplication(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		brokers      int
		ids, ctrlIDs []int
		want         string
	}{
		{"the same file", 3, nil, nil, ""},
		{"one broker renumbered", 3, []int{1, 2, 7}, nil,
			"brokers: the running cluster's brokers are 1,2,3, the cluster file's are 1,2,7: a node keeps its id for life"},
		{"every broker renumbered", 3, []int{101, 102, 103}, nil,
			"brokers: the running cluster's brokers are 1,2,3, the cluster file's are 101,102,103"},
		{"a broker added", 4, nil, nil, ""},
		{"a broker retired", 2, nil, nil, ""},
		{"brokers and controllers swapped", 3, []int{1001, 1002, 1003}, []int{1, 2, 3}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := nodes.Default()
			s.Brokers, s.BrokerIDs, s.ControllerIDs = tc.brokers, tc.ids, tc.ctrlIDs
			c, err := nodes.Plan(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := BrokerIDChange(quorum, c); (got == "") != (tc.want == "") || !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestAChangedQuorumModeIsNamed: a file whose quorum mode is not the
// running cluster's kraft.version (read as the real 4.4.0 prints it) is a
// problem, both ways; a release without kraft.version is not judged.
func TestAChangedQuorumModeIsNamed(t *testing.T) {
	out, err := os.ReadFile("testdata/real/4.4.0/features.txt")
	if err != nil {
		t.Fatal(err)
	}
	features, err := ParseFeatures(out)
	if err != nil {
		t.Fatal(err)
	}
	static := features["kraft.version"]
	staticSpec := nodes.Default()
	staticSpec.Quorum = nodes.QuorumStatic
	c, err := nodes.Plan(staticSpec)
	if err != nil {
		t.Fatal(err)
	}
	dynamicSpec := nodes.Default()
	dynamicSpec.Quorum = nodes.QuorumDynamic
	d, err := nodes.Plan(dynamicSpec)
	if err != nil {
		t.Fatal(err)
	}
	dynamic := Feature{SupportedMin: "0", SupportedMax: "1", Finalized: "1"}
	for _, tc := range []struct {
		name  string
		c     *nodes.Cluster
		kraft Feature
		want  string
	}{
		{"static file, static quorum", c, static, ""},
		{"dynamic file, dynamic quorum", d, dynamic, ""},
		{"dynamic file, static quorum", d, static, "quorum: the cluster file's is dynamic, the running cluster's static (kraft.version 0)"},
		{"static file, dynamic quorum", c, dynamic, "quorum: the cluster file's is static, the running cluster's dynamic (kraft.version 1)"},
		{"kraft.version unread", d, Feature{}, ""},
	} {
		if got := QuorumModeChange(tc.c, tc.kraft); (got == "") != (tc.want == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
