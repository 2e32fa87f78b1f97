package health

import (
	"strings"
	"testing"

	"dagger/kafka-bootc/nodes"
)

func TestTargets(t *testing.T) {
	c, err := nodes.Plan(nodes.Default())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublished("kafka-broker-1 quay.io/me/kafka-broker-1:latest@" + current + " signed\n")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := Targets(c, []string{"kafka-broker-1=192.168.122.11", "kafka-controller-2=vm7.example.com:2222"}, pub)
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].Host != "192.168.122.11" || ts[0].Published != current || ts[1].Host != "kafka-broker-2" || ts[1].Published != "" || ts[4].Host != "vm7.example.com:2222" {
		t.Errorf("targets %+v", ts)
	}
	for _, bad := range []struct {
		addr []string
		want string
	}{
		{[]string{"kafka-broker-9=10.0.0.9"}, `address "kafka-broker-9=10.0.0.9": must be NODE=HOST[:PORT] for a node of the cluster`},
		{[]string{"kafka-broker-1"}, `address "kafka-broker-1": must be NODE=HOST[:PORT]`},
		{[]string{"kafka-broker-1=bad host"}, `address "kafka-broker-1=bad host": "bad host" is not a host name`},
		{[]string{"kafka-broker-1=h:port"}, `address "kafka-broker-1=h:port": "h:port" is not a host name`},
		{[]string{"kafka-broker-1=a", "kafka-broker-1=b"}, `address "kafka-broker-1=b": kafka-broker-1 is given twice`},
	} {
		if _, err := Targets(c, bad.addr, nil); err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("%v: %v, want %q", bad.addr, err, bad.want)
		}
	}
	if refs, err := ParsePublished(""); err != nil || len(refs) != 0 {
		t.Errorf("no output: %v, %v", refs, err)
	}
	// build-all --format json gives the same references.
	digest := "sha256:" + strings.Repeat("cd", 32)
	asJSON, _ := nodes.FormatPublished(nodes.FormatJSON, []nodes.Published{nodes.PublishedAt("kafka-broker-1", "quay.io/me/kafka-broker-1:latest@"+digest)})
	if refs, err := ParsePublished(asJSON); err != nil || refs["kafka-broker-1"] != "quay.io/me/kafka-broker-1:latest@"+digest {
		t.Errorf("from JSON: %v, %v", refs, err)
	}
	unpublished, _ := nodes.FormatPublished(nodes.FormatJSON, []nodes.Published{{Node: "kafka-broker-1"}})
	if _, err := ParsePublished(unpublished); err == nil || !strings.Contains(err.Error(), "kafka-broker-1 has no reference pinned by digest") {
		t.Errorf("an unpublished node in JSON: %v", err)
	}
	if _, err := ParsePublished("kafka-broker-1 built\nnothing was published: no --registry given"); err == nil {
		t.Error("output without digests accepted")
	}
	if _, err := Targets(c, nil, map[string]string{"kafka-broker-1": "quay.io/me/kafka-broker-1:latest"}); err == nil {
		t.Error("a published reference without a digest accepted")
	}
}

// TestAnAddressFileFromStartVMs: the lines start-vms.sh writes, an
// --address that overrides one of them, and a line that is not one.
func TestAnAddressFileFromStartVMs(t *testing.T) {
	c, err := nodes.Plan(nodes.Default())
	if err != nil {
		t.Fatal(err)
	}
	file, err := ParseAddressFile("kafka-broker-1=192.168.122.10\n\n# a comment\nkafka-controller-1=192.168.122.11\n")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := Targets(c, MergeAddresses(file, []string{"kafka-controller-1=10.0.0.5:2222"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{}
	for _, n := range ns {
		hosts[n.Name] = n.Host
	}
	if hosts["kafka-broker-1"] != "192.168.122.10" || hosts["kafka-controller-1"] != "10.0.0.5:2222" || hosts["kafka-broker-2"] != "kafka-broker-2" {
		t.Errorf("hosts %v", hosts)
	}
	if _, err := ParseAddressFile("kafka-broker-1=10.0.0.1\nkafka-broker-2 10.0.0.2\n"); err == nil || err.Error() != `address file, line 2: "kafka-broker-2 10.0.0.2" must be NODE=HOST[:PORT]` {
		t.Errorf("a line without '=': %v", err)
	}
}
