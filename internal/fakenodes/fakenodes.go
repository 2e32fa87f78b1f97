// Package fakenodes is a cluster of fake nodes for tests: each answers
// the commands that health's probes and the rolling operations run over
// SSH, with bootc's JSON and Kafka's tools' output (3.8 and 4.x), and
// keeps its deployments, Kafka version and boots across calls.
package fakenodes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Node is a fake node: bootc's deployments, the Kafka unit, and how long
// it stays away after a reboot.
type Node struct {
	Name                     string
	Booted, Staged, Previous string
	Unit                     string
	// UnitAfterBoot is the unit's state after the next reboot.
	UnitAfterBoot string
	// Away is how many commands fail, as on a node that reboots.
	Away int
	// Version is the Kafka version the node runs; empty, a node image
	// whose sudoers does not allow reading it.
	Version string
	// Boots counts the node's reboots: its boot id.
	Boots int
}

// Cluster is a cluster of fake nodes by host, the digests that the nodes'
// tags point to in the registry, and every command that changed a node.
type Cluster struct {
	Nodes  map[string]*Node
	Tags   map[string]string
	Leader int
	// Voters are the quorum's voters; nil is the default cluster's
	// 1001, 1002 and 1003.
	Voters []int
	URP    string
	// AtMinISR is what kafka-topics.sh --describe --at-min-isr-partitions
	// prints: the partitions that one more replica out of sync would take
	// below min.insync.replicas.
	AtMinISR string
	// Hang names a command (a substring of it) that never returns on any
	// node, until its context ends: a node whose bootc, systemd or Kafka
	// tool is stuck.
	Hang string
	// Refuse names a command (a substring of it) that sudo refuses on
	// every node, as on a node image whose sudoers drop-in predates it.
	Refuse string
	Steps  []string
	// OnStep, when set, runs after every step.
	OnStep func(f *Cluster)
	// VersionOf is the Kafka version of each image digest, which a node
	// runs once it boots the image; Metadata is the cluster's finalized
	// metadata.version, empty when it cannot be read.
	VersionOf map[string]string
	// KRaftVersion is the finalized kraft.version that Kafka 4's
	// kafka-features.sh prints: "0" (a static quorum) when empty.
	KRaftVersion string
	Metadata     string

	mu sync.Mutex
}

// BootcJSON is bootc status --format=json of a node.
func BootcJSON(booted, staged string) string {
	entry := func(d string) string {
		if d == "" {
			return "null"
		}
		return fmt.Sprintf(`{"image":{"image":{"image":"quay.io/me/n:latest","transport":"registry"},"imageDigest":%q}}`, d)
	}
	return fmt.Sprintf(`{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","status":{"staged":%s,"booted":%s}}`, entry(staged), entry(booted))
}

// quorum is describe --replication of the default cluster, everyone caught
// up, as Kafka 3.8 prints it.
func (f *Cluster) quorum() string {
	var b strings.Builder
	b.WriteString("NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n")
	voters := f.Voters
	if voters == nil {
		voters = []int{1001, 1002, 1003}
	}
	for _, id := range voters {
		status := "Follower"
		if id == f.Leader {
			status = "Leader  "
		}
		fmt.Fprintf(&b, "%-6d\t4213        \t0  \t1795731220412     \t1795731220412        \t%s\t\n", id, status)
	}
	for _, id := range []int{1, 2, 3} {
		fmt.Fprintf(&b, "%-6d\t4213        \t0  \t1795731220412     \t1795731220412        \tObserver\t\n", id)
	}
	return b.String()
}

// Run answers a command as the node at host would.
func (f *Cluster) Run(ctx context.Context, host string, argv []string) ([]byte, error) {
	f.mu.Lock()
	if hang := f.Hang; hang != "" && strings.Contains(strings.Join(argv, " "), hang) {
		f.Steps = append(f.Steps, f.Nodes[host].Name+": hung on "+hang)
		f.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	defer f.mu.Unlock()
	if f.Refuse != "" && strings.Contains(strings.Join(argv, " "), f.Refuse) {
		return nil, errors.New("sudo: a password is required")
	}
	n := f.Nodes[host]
	if n.Away > 0 {
		n.Away--
		return nil, fmt.Errorf("dial tcp %s:22: connect: connection refused", host)
	}
	cmd := strings.Join(argv, " ")
	step := func(s string) {
		f.Steps = append(f.Steps, n.Name+": "+s)
		if f.OnStep != nil {
			f.OnStep(f)
		}
	}
	switch {
	case cmd == "cat /etc/hostname":
		return []byte(n.Name + "\n"), nil
	case cmd == "test -e /run/ostree-booted":
		return nil, nil
	case cmd == "cat /proc/sys/kernel/random/boot_id":
		return fmt.Appendf(nil, "boot-%d\n", n.Boots), nil
	case cmd == "sudo -n /usr/bin/bootc status --format=json":
		return []byte(BootcJSON(n.Booted, n.Staged)), nil
	case strings.HasPrefix(cmd, "/usr/bin/systemctl is-active "):
		if n.Unit != "active" {
			return []byte(n.Unit + "\n"), errors.New("exit status 3")
		}
		return []byte("active\n"), nil
	case strings.Contains(cmd, "kafka-metadata-quorum.sh"):
		return []byte(f.quorum()), nil
	case strings.Contains(cmd, "--under-replicated-partitions"):
		return []byte(f.URP), nil
	case strings.Contains(cmd, "--at-min-isr-partitions"):
		return []byte(f.AtMinISR), nil
	case strings.Contains(cmd, "--unavailable-partitions"):
		return nil, nil
	case strings.Contains(cmd, "kafka-broker-api-versions.sh"):
		return []byte("kafka-broker-1:9092 (id: 1 rack: null) -> (\n)\nkafka-broker-2:9092 (id: 2 rack: null) -> (\n)\nkafka-broker-3:9092 (id: 3 rack: null) -> (\n)\n"), nil
	case strings.HasSuffix(cmd, "/opt/kafka/bin/kafka-topics.sh --version"):
		if n.Version == "" {
			return nil, errors.New("sudo: a password is required")
		}
		return []byte(n.Version + "\n"), nil
	case strings.Contains(cmd, "kafka-features.sh") && strings.HasSuffix(cmd, " describe"):
		if f.Metadata == "" {
			return nil, errors.New("sudo: a password is required")
		}
		if strings.HasPrefix(n.Version, "4.") {
			// Kafka 4's describe lists more features than metadata.version,
			// and no epoch (kafka-features.sh describe on 4.0.0).
			return []byte("Feature: eligible.leader.replicas.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n" +
				"Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\n" +
				"Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: " + cmp.Or(f.KRaftVersion, "0") + "\n" +
				"Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: " + n.Version[:3] + "-IV3\tFinalizedVersionLevel: " + f.Metadata + "\n" +
				"Feature: transaction.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 2\tFinalizedVersionLevel: 0\n"), nil
		}
		return []byte("Feature: metadata.version\tSupportedMinVersion: 3.0-IV1\tSupportedMaxVersion: " + f.Metadata + "\tFinalizedVersionLevel: " + f.Metadata + "\tEpoch: 7\n"), nil
	case strings.Contains(cmd, "kafka-features.sh") && strings.Contains(cmd, " upgrade --metadata "):
		_, release, _ := strings.Cut(cmd, " upgrade --metadata ")
		f.Metadata = release + "-IV0"
		step("finalize " + release)
		if strings.HasPrefix(release, "4.") {
			// 3.9 and 4.x take --metadata, and say it is deprecated.
			return []byte(" `metadata` flag is deprecated and may be removed in a future release.\nmetadata.version was upgraded to 27.\n"), nil
		}
		return []byte("metadata.version was upgraded to 20.\n"), nil
	case cmd == "sudo -n /usr/bin/bootc upgrade":
		n.Staged = f.Tags[n.Name]
		step("stage")
		return nil, nil
	case cmd == "sudo -n /usr/bin/bootc rollback":
		n.Staged = n.Previous
		step("rollback")
		return nil, nil
	case cmd == "sudo -n /usr/bin/systemctl reboot":
		if n.Staged != "" {
			n.Previous, n.Booted, n.Staged = n.Booted, n.Staged, ""
		}
		if v := f.VersionOf[n.Booted]; v != "" {
			n.Version = v
		}
		if n.UnitAfterBoot != "" {
			n.Unit = n.UnitAfterBoot
		}
		n.Away = 2
		n.Boots++
		step("reboot")
		return nil, errors.New("wait: remote command exited without exit status or exit signal")
	}
	return nil, fmt.Errorf("fake %s: unexpected command %q", host, cmd)
}
