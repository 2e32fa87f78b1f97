package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Bootc is what bootc status says of a node's images.
type Bootc struct {
	// Booted and Staged are image digests (sha256:...); Staged is empty
	// when nothing is staged.
	Booted, Staged string
	// Image is the reference the booted image came from, which bootc
	// upgrades from.
	Image string
}

// ParseBootc reads the output of "bootc status --format=json": a BootcHost
// object of bootc's host-v1 schema (docs/src/host-v1.schema.json in
// bootc-dev/bootc), where status.booted and status.staged are boot entries
// whose image holds the image reference and its imageDigest.
func ParseBootc(out []byte) (Bootc, error) {
	type entry struct {
		Image *struct {
			Image struct {
				Image string `json:"image"`
			} `json:"image"`
			ImageDigest string `json:"imageDigest"`
		} `json:"image"`
	}
	var host struct {
		Kind   string `json:"kind"`
		Status struct {
			Staged *entry `json:"staged"`
			Booted *entry `json:"booted"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &host); err != nil {
		return Bootc{}, fmt.Errorf("bootc status: %w", err)
	}
	if host.Kind != "BootcHost" {
		return Bootc{}, fmt.Errorf("bootc status: kind %q, want BootcHost", host.Kind)
	}
	b := host.Status.Booted
	if b == nil || b.Image == nil || b.Image.ImageDigest == "" {
		return Bootc{}, errors.New("bootc status: no booted image: the node does not run a bootc image")
	}
	st := Bootc{Booted: b.Image.ImageDigest, Image: b.Image.Image.Image}
	if s := host.Status.Staged; s != nil && s.Image != nil {
		st.Staged = s.Image.ImageDigest
	}
	return st, nil
}

// Replica is one row of "kafka-metadata-quorum.sh describe --replication":
// a voter (Leader or Follower) or an Observer of the metadata quorum.
type Replica struct {
	ID           int
	LogEndOffset int64
	// Lag is the leader's log end offset minus this replica's.
	Lag int64
	// LastFetch and LastCaughtUp are in ms since the epoch, -1 if never.
	LastFetch, LastCaughtUp int64
	// Status is Leader, Follower or Observer.
	Status string
	// DirectoryID is the replica's metadata directory id (3.9 and later):
	// in a dynamic quorum, a voter is a node id and a directory id, and a
	// node whose disk was replaced comes back under a new one.
	// AAAAAAAAAAAAAAAAAAAAAA in a static quorum; empty before 3.9.
	DirectoryID string
}

// replicationColumns are the columns that MetadataQuorumCommand prints in
// Kafka 3.8 (handleDescribeReplication), each value padded to the
// column's width and followed by a tab (ToolsUtils.prettyPrintTable).
var replicationColumns = []string{"NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"}

// ParseReplication reads "kafka-metadata-quorum.sh describe --replication".
// Columns are found by name, so that a column that a later Kafka adds (3.9
// adds DirectoryId) is skipped rather than misread.
func ParseReplication(out []byte) ([]Replica, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := map[string]int{}
	for i, name := range strings.Fields(lines[0]) {
		col[name] = i
	}
	for _, name := range replicationColumns {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("quorum replication: no %s column in %q", name, lines[0])
		}
	}
	var rs []Replica
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != len(col) {
			return nil, fmt.Errorf("quorum replication: row %q has %d columns, the header %d", line, len(f), len(col))
		}
		var id int64
		r := Replica{Status: f[col["Status"]]}
		if i, ok := col["DirectoryId"]; ok {
			r.DirectoryID = f[i]
		}
		for _, v := range []struct {
			name string
			to   *int64
		}{{"NodeId", &id}, {"LogEndOffset", &r.LogEndOffset}, {"Lag", &r.Lag}, {"LastFetchTimestamp", &r.LastFetch}, {"LastCaughtUpTimestamp", &r.LastCaughtUp}} {
			n, err := strconv.ParseInt(f[col[v.name]], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("quorum replication: %s %q in row %q is not a number", v.name, f[col[v.name]], line)
			}
			*v.to = n
		}
		r.ID = int(id)
		rs = append(rs, r)
	}
	return rs, nil
}

// liveBroker is a broker line of kafka-broker-api-versions.sh: the broker
// as Kafka's Node.toString writes it, then " -> " and its API versions
// (BrokerApiVersionsCommand). Node.toString is "host:port (id: N rack: R)"
// in Kafka 3.8, and "host:port (id: N rack: R isFenced: F)" since Kafka 4
// gave nodes their fenced state (KIP-1073).
var liveBroker = regexp.MustCompile(`(?m)^\S+ \(id: (-?\d+) rack: [^)]*?( isFenced: (true|false))?\) -> `)

// ParseLiveBrokers reads the ids of the brokers that
// "kafka-broker-api-versions.sh" lists: those in the cluster's metadata,
// which in KRaft are the registered brokers that are not fenced.
func ParseLiveBrokers(out []byte) ([]int, error) {
	var ids []int
	for _, m := range liveBroker.FindAllSubmatch(out, -1) {
		if string(m[3]) == "true" {
			continue
		}
		id, err := strconv.Atoi(string(m[1]))
		if err != nil {
			return nil, fmt.Errorf("broker api versions: id %q is not a number", m[1])
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("broker api versions: no broker in %q", firstLine(out))
	}
	return ids, nil
}

func firstLine(out []byte) string {
	line, _, _ := strings.Cut(string(out), "\n")
	return line
}

// Partition is one partition line of "kafka-topics.sh --describe".
type Partition struct {
	Topic     string
	Partition int
	// Leader is -1 when the partition has none (Kafka prints "none").
	Leader int
	// ISR and Replicas are the in-sync and the assigned replicas' ids as
	// Kafka prints them, "1,3".
	ISR, Replicas string
}

// InSync reports whether the broker is one of the partition's in-sync
// replicas.
func (p Partition) InSync(id int) bool {
	for _, r := range strings.Split(p.ISR, ",") {
		if r == strconv.Itoa(id) {
			return true
		}
	}
	return false
}

// ParsePartitions reads the partition lines of "kafka-topics.sh --describe"
// (TopicCommand.PartitionDescription.printDescription in Kafka 3.8:
// tab-separated "Name: value" fields, starting with a tab and Topic; Kafka
// 4 adds Elr and LastKnownElr, which may be empty).
// Other lines, such as a topic's summary, are skipped.
func ParsePartitions(out []byte) ([]Partition, error) {
	var ps []Partition
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "\tTopic: ") {
			continue
		}
		fields := map[string]string{}
		for _, kv := range strings.Split(strings.TrimPrefix(line, "\t"), "\t") {
			k, v, _ := strings.Cut(kv, ": ")
			fields[k] = v
		}
		p := Partition{Topic: fields["Topic"], Leader: -1, ISR: strings.TrimSpace(fields["Isr"]), Replicas: strings.TrimSpace(fields["Replicas"])}
		var err error
		if p.Partition, err = strconv.Atoi(fields["Partition"]); err != nil {
			return nil, fmt.Errorf("topics: partition %q in %q is not a number", fields["Partition"], line)
		}
		if l := fields["Leader"]; l != "none" {
			if p.Leader, err = strconv.Atoi(l); err != nil {
				return nil, fmt.Errorf("topics: leader %q in %q is not a number", l, line)
			}
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// kafkaVersion is a Kafka release as the tools print it (AppInfoParser's
// version, "3.8.0").
var kafkaVersion = regexp.MustCompile(`^\d+\.\d+\.\d+(-[A-Za-z0-9.]+)?$`)

// ParseVersion reads what a Kafka tool prints with --version
// (CommandLineUtils.printVersionAndExit): the version, on the last line
// that holds one; a line the JVM or a logger adds before it is skipped.
func ParseVersion(out []byte) (string, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if v := strings.TrimSpace(lines[i]); kafkaVersion.MatchString(v) {
			return v, nil
		}
	}
	return "", fmt.Errorf("kafka version: not in %q", firstLine(out))
}

// Feature is one line of "kafka-features.sh describe": a feature's levels,
// as FeatureCommand.handleDescribe prints them; metadata.version's as
// release names (3.8-IV0).
type Feature struct {
	Name                                  string
	SupportedMin, SupportedMax, Finalized string
}

// featureField is a "Name: value" field of kafka-features.sh describe;
// no name or value holds a space.
var featureField = regexp.MustCompile(`(\w+): *(\S*)`)

// ParseFeatures reads "kafka-features.sh describe": a line per feature,
// "Feature: F  SupportedMinVersion: A  SupportedMaxVersion: B
// FinalizedVersionLevel: C  Epoch: E". Kafka 3.9 separates the fields with
// tabs; 4.4 pads them with spaces to columns, and lists kraft.version,
// group.version and others too (testdata/real holds both, as the tools
// print them).
func ParseFeatures(out []byte) (map[string]Feature, error) {
	features := map[string]Feature{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "Feature: ") {
			continue
		}
		fields := map[string]string{}
		for _, m := range featureField.FindAllStringSubmatch(line, -1) {
			fields[m[1]] = m[2]
		}
		f := Feature{Name: fields["Feature"], SupportedMin: fields["SupportedMinVersion"],
			SupportedMax: fields["SupportedMaxVersion"], Finalized: fields["FinalizedVersionLevel"]}
		if f.Name == "" || f.Finalized == "" {
			return nil, fmt.Errorf("kafka features: cannot read %q", line)
		}
		features[f.Name] = f
	}
	if _, ok := features["metadata.version"]; !ok {
		return nil, fmt.Errorf("kafka features: no metadata.version in %q", firstLine(out))
	}
	return features, nil
}

// Release is the Kafka release of a metadata.version or a version,
// major.minor: "3.8" of "3.8-IV0" and of "3.8.1".
func Release(version string) string {
	v, _, _ := strings.Cut(version, "-")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// ParseClusterID reads the cluster id from "kafka-metadata-quorum.sh
// describe --status": its "ClusterId:" line, the value padded to a column
// (MetadataQuorumCommand.handleDescribeStatus, 3.9 and 4.4 alike).
func ParseClusterID(out []byte) (string, error) {
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "ClusterId:"); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("quorum status: no ClusterId in %q", firstLine(out))
}
