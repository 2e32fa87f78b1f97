package health

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"dagger/kafka-bootc/nodes"
)

// sudoRefusal is what sudo -n says of a command that the node's sudoers
// drop-in does not allow: a node image built before the probe existed.
const sudoRefusal = "a password is required"

// ErrProbeNotAllowed is RestartBlockers' answer when the brokers' images
// predate the probe of partitions at min ISR: the first rollout onto
// images that have it must still be able to move them.
var ErrProbeNotAllowed = errors.New("the brokers' node images predate the probe of partitions at min ISR (kafka-topics.sh --at-min-isr-partitions)")

// Blocker is a reason not to take a node away now.
type Blocker struct {
	Why string
	// Lasting is set when waiting cannot clear it: a partition whose
	// replication factor equals its min.insync.replicas is at its minimum
	// however long one waits.
	Lasting bool
}

// RestartBlockers says what taking node n away now would cost the cluster
// beyond that node, from the state that Check read a moment ago. Strimzi's
// KafkaRoller asks the same immediately before every restart: for a
// broker, whether a partition would fall below min.insync.replicas
// (KafkaAvailability.wouldAffectAvailability), for a controller, whether a
// majority of the voters stays caught up (KafkaQuorumCheck
// .canRollController). Nothing: the node may go. An error: the state could
// not be read, which blocks the restart as well.
func (r Report) RestartBlockers(ctx context.Context, run Runner, c *nodes.Cluster, n Node) ([]Blocker, error) {
	if n.Role == nodes.Controller {
		return r.quorumBlockers(n), nil
	}
	var atMin []Partition
	if err := firstAnswer(ctx, boundedProbe(run, c), r.Rows, nodes.Broker, nodes.ProbeAtMinISR, func(out []byte) (err error) {
		atMin, err = ParsePartitions(out)
		return err
	}); err != nil {
		if strings.Contains(err.Error(), sudoRefusal) {
			return nil, ErrProbeNotAllowed
		}
		return nil, fmt.Errorf("partitions at min ISR: cannot be read: %v", OneLine(err))
	}
	var bs []Blocker
	for _, p := range atMin {
		if !p.InSync(n.ID) {
			continue
		}
		lasting := len(strings.Split(p.ISR, ",")) == len(strings.Split(p.Replicas, ","))
		why := fmt.Sprintf("%s-%d: its in-sync replicas %s are its min.insync.replicas; with broker %d away, producers with acks=all are refused", p.Topic, p.Partition, p.ISR, n.ID)
		if lasting {
			why += "; its replication factor equals its min.insync.replicas, so no broker that holds it can restart without that: add a replica (kafka-reassign-partitions.sh) or lower the topic's min.insync.replicas"
		}
		bs = append(bs, Blocker{Why: why, Lasting: lasting})
	}
	return bs, nil
}

// quorumBlockers: a controller may go when, without it, a majority of the
// voters is still caught up with the leader. A quorum of one voter has no
// majority without it, whenever it restarts: it is let go, as Strimzi
// does, and its cluster is away while it restarts.
func (r Report) quorumBlockers(n Node) []Blocker {
	if len(r.Voters) == 1 && r.Voters[0] == n.ID {
		return nil
	}
	var leader *Replica
	for _, row := range r.Rows {
		if row.Replica != nil && row.Replica.ID == r.Leader {
			leader = row.Replica
		}
	}
	if leader == nil || len(r.Voters) == 0 {
		return []Blocker{{Why: "metadata quorum: no leader to judge the voters by"}}
	}
	var caught []string
	for _, row := range r.Rows {
		if row.ID != n.ID && row.Role == nodes.Controller && row.Replica != nil && row.Replica.Status != "Observer" && CaughtUp(*leader, *row.Replica) {
			caught = append(caught, fmt.Sprint(row.ID))
		}
	}
	if majority := len(r.Voters)/2 + 1; len(caught) < majority {
		return []Blocker{{Why: fmt.Sprintf("metadata quorum: without controller %d, %d of its %d voters are caught up (%s), and it needs %d", n.ID, len(caught), len(r.Voters), strings.Join(caught, ","), majority)}}
	}
	return nil
}
