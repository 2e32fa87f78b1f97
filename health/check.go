// Package health reads the state of a running cluster: bootc's view of each
// node's images, its Kafka unit, the metadata quorum and the partitions.
// It reaches nodes only through a Runner, so that its logic is tested
// against fakes and the transport (package remote) against a real sshd.
package health

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"dagger/kafka-bootc/nodes"

	"github.com/sourcegraph/conc/pool"
)

// Runner runs commands on nodes.
type Runner interface {
	// Run runs argv on the node at host and returns its standard output.
	// A command that exits non-zero returns its output and an error.
	Run(ctx context.Context, host string, argv []string) ([]byte, error)
}

// Node is a node of the cluster and where to reach it.
type Node struct {
	nodes.Node
	// Host is the node's address, host or host:port.
	Host string
	// Published is the digest published for the node (sha256:...), or
	// empty when it is not known.
	Published string
}

// Row is what the checks read of one node.
type Row struct {
	Node
	// Err says why the node could not be read; the rest is then empty.
	Err   error
	Bootc Bootc
	// Unit is the Kafka unit's state as systemctl is-active prints it.
	Unit string
	// Replica is the node in the metadata quorum, nil when it is not in it
	// or the quorum could not be read.
	Replica *Replica
	// URP counts the under-replicated partitions that this broker leads;
	// -1 for a controller, or when the partitions could not be read.
	URP int
	// Version is the Kafka version the node runs, empty when unknown (a node
	// image older than the version probe does not allow it).
	Version string
	// Cert is the certificate that the node's Kafka listener presents, in
	// tls mode, when the Runner is a Dialer; CertErr says why it could not
	// be read.
	Cert    *x509.Certificate
	CertErr error
}

// Report is the state of the whole cluster.
type Report struct {
	Rows []Row
	// Leader is the id of the quorum's leader, -1 when unknown.
	Leader int
	// Voters are the ids of the running quorum's voters, in order; nil
	// when the quorum could not be read.
	Voters []int
	// ClusterID is the running cluster's id, empty when it could not be
	// read (a node image older than its probe does not allow it).
	ClusterID string
	// Problems say what makes the cluster unhealthy, one line each.
	Problems []string
	// At is when the nodes were read.
	At time.Time
	// MetadataVersion is the cluster's metadata.version feature, its
	// finalized level and the highest the binaries support; empty when it
	// could not be read.
	MetadataVersion Feature
	// Quorum is the metadata quorum's replication as a controller reads
	// it: every voter and observer; nil when it could not be read.
	Quorum []Replica
	// KRaftVersion is the cluster's kraft.version feature: finalized 0 is
	// a static quorum (controller.quorum.voters), 1 a dynamic one
	// (KIP-853), whose voters change with add-controller and
	// remove-controller. Empty when it could not be read, or on a release
	// before 3.9, which has no such feature and only static quorums.
	KRaftVersion Feature
}

// Versions lists the Kafka versions that the nodes run, each with its
// nodes, in the nodes' order; more than one is a rollout under way, or one
// that stopped.
func (r Report) Versions() []string {
	var order []string
	by := map[string][]string{}
	for _, row := range r.Rows {
		if row.Version == "" {
			continue
		}
		if _, ok := by[row.Version]; !ok {
			order = append(order, row.Version)
		}
		by[row.Version] = append(by[row.Version], row.Name)
	}
	var out []string
	for _, v := range order {
		out = append(out, v+" on "+strings.Join(by[v], ", "))
	}
	return out
}

// Healthy reports whether the checks found nothing wrong.
func (r Report) Healthy() bool { return len(r.Problems) == 0 }

// MaxVoterLagMs is how far, in time, a voter's last caught-up moment may be
// behind the leader's for the voter to count as caught up: the measure that
// kafka-metadata-quorum.sh describe --status prints as MaxFollowerLagTimeMs,
// and the one Strimzi's KafkaQuorumCheck.isQuorumHealthyWithoutNode
// compares (there against controller.quorum.fetch.timeout.ms).
const MaxVoterLagMs = 5000

// ProbeTimeout bounds each probe, so that a node that does not answer
// cannot hold the check: Kafka's tools give up within a minute (the admin
// client's default.api.timeout.ms).
const ProbeTimeout = 2 * time.Minute

// Check reads every node and the cluster's Kafka state. It needs the
// nodes' role probes (nodes.Cluster.Probes); root probes run through
// "sudo -n", which the role image's sudoers drop-in allows.
func Check(ctx context.Context, run Runner, c *nodes.Cluster, ns []Node) Report {
	probe := boundedProbe(run, c)
	now := time.Now()
	rows := make([]Row, len(ns))
	p := pool.New()
	for i, n := range ns {
		p.Go(func() {
			row := Row{Node: n, URP: -1}
			out, err := probe(ctx, n, nodes.ProbeBootc)
			if err == nil {
				row.Bootc, err = ParseBootc(out)
			}
			if err != nil {
				row.Err = err
				rows[i] = row
				return
			}
			// is-active exits non-zero for any state but active; the
			// state is what it prints.
			out, _ = probe(ctx, n, nodes.ProbeUnit)
			if row.Unit = strings.TrimSpace(string(out)); row.Unit == "" {
				row.Unit = "unknown"
			}
			rows[i] = row
		})
	}
	p.Wait()

	rep := Report{Rows: rows, Leader: -1, At: now}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	for _, r := range rows {
		switch {
		case r.Err != nil:
			problem("%s: %v", r.Name, r.Err)
		case r.Unit != "active":
			problem("%s: the Kafka unit is %s", r.Name, r.Unit)
		}
	}

	first := func(role nodes.Role, name string, parse func([]byte) error) error {
		return firstAnswer(ctx, probe, rows, role, name, parse)
	}

	var quorum []Replica
	if err := first(nodes.Controller, nodes.ProbeQuorum, func(out []byte) (err error) {
		quorum, err = ParseReplication(out)
		return err
	}); err != nil {
		problem("metadata quorum: cannot be read: %v", OneLine(err))
	} else {
		var leader *Replica
		byID := map[int]*Replica{}
		for i := range quorum {
			byID[quorum[i].ID] = &quorum[i]
			if quorum[i].Status == "Leader" {
				leader = &quorum[i]
				rep.Leader = quorum[i].ID
			}
		}
		if leader == nil {
			problem("metadata quorum: no leader")
		}
		rep.Quorum = quorum
		rep.Voters = voters(quorum)
		if want := controllerIDs(c); !slices.Equal(rep.Voters, want) {
			if c.Dynamic {
				problem("%s", VotersToChange(rep.Voters, want))
			} else {
				problem("%s", VoterSetChange(rep.Voters, want))
			}
		}
		if change := BrokerIDChange(quorum, c); change != "" {
			problem("%s", change)
		}
		first(nodes.Controller, nodes.ProbeQuorumStatus, func(out []byte) (err error) {
			rep.ClusterID, err = ParseClusterID(out)
			return err
		})
		if rep.ClusterID != "" && rep.ClusterID != c.ID {
			problem("cluster id: the running cluster's is %s, the cluster file's %s (from its name, or clusterId): nodes built from the file format their storage for another cluster and cannot join this one; put name and clusterId back as they were", rep.ClusterID, c.ID)
		}
		for i := range rep.Rows {
			r := &rep.Rows[i]
			r.Replica = byID[r.ID]
			switch {
			case r.Role == nodes.Controller && (r.Replica == nil || r.Replica.Status == "Observer"):
				if c.Dynamic && r.Replica != nil {
					problem("%s: node %d is an observer, not a voter, of the metadata quorum: running ... quorum adds it", r.Name, r.ID)
				} else {
					problem("%s: node %d is not a voter of the metadata quorum", r.Name, r.ID)
				}
			case r.Role == nodes.Controller && leader != nil && !CaughtUp(*leader, *r.Replica):
				problem("%s: behind the quorum leader by %d records (last caught up %d ms after the leader's)",
					r.Name, r.Replica.Lag, leader.LastCaughtUp-r.Replica.LastCaughtUp)
			case r.Role == nodes.Broker && r.Replica == nil:
				problem("%s: node %d does not fetch the cluster's metadata (no observer of the quorum)", r.Name, r.ID)
			}
		}
	}

	var urp, offline []Partition
	if err := first(nodes.Broker, nodes.ProbeUnderReplicated, func(out []byte) (err error) {
		urp, err = ParsePartitions(out)
		return err
	}); err != nil {
		problem("partitions: cannot be read: %v", OneLine(err))
	} else {
		for i := range rep.Rows {
			r := &rep.Rows[i]
			if r.Role != nodes.Broker {
				continue
			}
			r.URP = 0
			for _, p := range urp {
				if p.Leader == r.ID {
					r.URP++
				}
			}
		}
		if len(urp) > 0 {
			problem("partitions: %d under-replicated", len(urp))
		}
	}
	var live []int
	if err := first(nodes.Broker, nodes.ProbeLiveBrokers, func(out []byte) (err error) {
		live, err = ParseLiveBrokers(out)
		return err
	}); err != nil {
		problem("brokers: the live brokers cannot be read: %v", OneLine(err))
	} else {
		for _, r := range rep.Rows {
			if r.Role == nodes.Broker && !slices.Contains(live, r.ID) {
				problem("%s: node %d is not a live broker (not registered, or fenced)", r.Name, r.ID)
			}
		}
	}
	if err := first(nodes.Broker, nodes.ProbeUnavailable, func(out []byte) (err error) {
		offline, err = ParsePartitions(out)
		return err
	}); err == nil && len(offline) > 0 {
		problem("partitions: %d without a leader on a live broker", len(offline))
	}
	return rep
}

// ReadDetails reads what Check leaves out, which health shows and the
// rolling operations decide by, but a gate polled between two nodes does
// not need: each node's Kafka version, the certificate its Kafka listener
// presents (in tls mode, when run is a Dialer), and the cluster's
// metadata.version. Each is read, not judged: a node image older than its
// probe does not allow it.
func (r *Report) ReadDetails(ctx context.Context, run Runner, c *nodes.Cluster) {
	probe := boundedProbe(run, c)
	p := pool.New()
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Err != nil || row.Unit != "active" {
			continue
		}
		p.Go(func() {
			if out, err := probe(ctx, row.Node, nodes.ProbeVersion); err == nil {
				row.Version, _ = ParseVersion(out)
			}
			if d, ok := run.(Dialer); ok && c.TLS {
				ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
				row.Cert, row.CertErr = ReadCertificate(ctx, d, c, row.Node)
				cancel()
			}
		})
	}
	p.Wait()
	firstAnswer(ctx, probe, r.Rows, nodes.Broker, nodes.ProbeFeatures, func(out []byte) error {
		features, err := ParseFeatures(out)
		r.MetadataVersion = features["metadata.version"]
		r.KRaftVersion = features["kraft.version"]
		return err
	})
	if change := QuorumModeChange(c, r.KRaftVersion); change != "" {
		r.Problems = append(r.Problems, change)
	}
}

// StaticToDynamic is the problem of a static quorum whose cluster file
// says dynamic: rollout moves it (Kafka 4.1 and later).
const StaticToDynamic = "quorum: the cluster file's is dynamic, the running cluster's static (kraft.version 0): rollout moves it (kraft.version raised to 1, then every node onto the file's rendering, controllers first), once every node runs Kafka 4.1 or later"

// QuorumModeChange says that the cluster file's quorum mode is not the
// running cluster's. A dynamic rendering rolled onto a static quorum
// would take the controllers' voters away (they are in
// controller.quorum.voters, not in the metadata log), and a static one
// onto a dynamic quorum would give them a voter set that the log no
// longer holds. Empty when they agree, or when kraft.version was not read.
func QuorumModeChange(c *nodes.Cluster, kraft Feature) string {
	switch {
	case kraft.Finalized == "":
		return ""
	case c.Dynamic && kraft.Finalized == "0":
		return StaticToDynamic
	case !c.Dynamic && kraft.Finalized != "0":
		return fmt.Sprintf("quorum: the cluster file's is static, the running cluster's dynamic (kraft.version %s): its voters are in the metadata log, not in controller.quorum.voters; put quorum: dynamic back", kraft.Finalized)
	}
	return ""
}

// boundedProbe runs probes that give up after ProbeTimeout, so that a node
// that does not answer cannot hold a check.
func boundedProbe(run Runner, c *nodes.Cluster) func(context.Context, Node, string) ([]byte, error) {
	return func(ctx context.Context, n Node, name string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
		defer cancel()
		return RunProbe(ctx, run, c, n, name)
	}
}

// firstAnswer reads the cluster's state from the first node of the role
// with an active Kafka unit that answers the probe.
func firstAnswer(ctx context.Context, probe func(context.Context, Node, string) ([]byte, error), rows []Row, role nodes.Role, name string, parse func([]byte) error) error {
	var errs []error
	for _, r := range rows {
		if r.Role != role || r.Err != nil || r.Unit != "active" {
			continue
		}
		out, err := probe(ctx, r.Node, name)
		if err == nil {
			if err = parse(out); err == nil {
				return nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("no %s with an active Kafka unit to ask", role)
	}
	return errors.Join(errs...)
}

// ReadQuorum reads the metadata quorum's replication from the first
// controller of ns that answers: what a step of the quorum's voters waits
// on, without a whole Check.
func ReadQuorum(ctx context.Context, run Runner, c *nodes.Cluster, ns []Node) ([]Replica, error) {
	rows := make([]Row, len(ns))
	for i, n := range ns {
		rows[i] = Row{Node: n, Unit: "active"}
	}
	var quorum []Replica
	err := firstAnswer(ctx, boundedProbe(run, c), rows, nodes.Controller, nodes.ProbeQuorum, func(out []byte) (err error) {
		quorum, err = ParseReplication(out)
		return err
	})
	return quorum, err
}

// RunProbe runs the named probe of the node's role on the node.
func RunProbe(ctx context.Context, run Runner, c *nodes.Cluster, n Node, name string) ([]byte, error) {
	p, ok := c.Probe(n.Role, name)
	if !ok {
		return nil, fmt.Errorf("no %s probe on a %s", name, n.Role)
	}
	return run.Run(ctx, n.Host, p.Command())
}

// voters are the ids of the quorum's voters, the leader and its
// followers, in order.
func voters(quorum []Replica) []int {
	var ids []int
	for _, r := range quorum {
		if r.Status != "Observer" {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// controllerIDs are the ids of the cluster file's controllers, in order.
func controllerIDs(c *nodes.Cluster) []int {
	var ids []int
	for _, n := range c.Nodes {
		if n.Role == nodes.Controller {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// VoterSetChange says that the running quorum's voters are not the
// controllers that the cluster file names. Rolling such a cluster onto
// its rendering would give each controller a static voter list that the
// running quorum does not have: two quorums that each believe they hold
// the majority.
func VoterSetChange(running, file []int) string {
	return fmt.Sprintf("metadata quorum: the running voters are %s, the cluster file's controllers are %s: the controller set of a running cluster does not change by a rollout; put controllers.count and controllers.ids back as they were", idList(running), idList(file))
}

// BrokerIDChange says that the cluster file renumbered brokers: some of
// the running cluster's brokers (the quorum's observers that are not the
// file's controllers) are missing from the file while some of the file's
// are not running. A node keeps its id for life: its data, its partition
// replicas and its certificate's identity are under it, and a node image
// with another id formats nothing and joins as a new, empty broker. A
// broker only added, or only retired, is not a renumbering: it is empty.
func BrokerIDChange(quorum []Replica, c *nodes.Cluster) string {
	controllers := controllerIDs(c)
	var running, file, missing, unknown []int
	for _, r := range quorum {
		if r.Status == "Observer" && !slices.Contains(controllers, r.ID) {
			running = append(running, r.ID)
		}
	}
	for _, n := range c.Nodes {
		if n.Role == nodes.Broker {
			file = append(file, n.ID)
		}
	}
	slices.Sort(running)
	slices.Sort(file)
	for _, id := range file {
		if !slices.Contains(running, id) {
			missing = append(missing, id)
		}
	}
	for _, id := range running {
		if !slices.Contains(file, id) {
			unknown = append(unknown, id)
		}
	}
	if len(missing) == 0 || len(unknown) == 0 {
		return ""
	}
	return fmt.Sprintf("brokers: the running cluster's brokers are %s, the cluster file's are %s: a node keeps its id for life (its data and its partition replicas are under it); put brokers.ids (and controllers.ids) back as they were", idList(running), idList(file))
}

// VotersToChange says that a dynamic quorum's voters are not yet the
// controllers that the cluster file names: running ... quorum makes them
// so, one voter at a time.
func VotersToChange(running, file []int) string {
	return fmt.Sprintf("metadata quorum: the running voters are %s, the cluster file's controllers are %s: run running ... quorum, which adds the file's controllers that run as observers and removes the other voters, one at a time", idList(running), idList(file))
}

func idList(ids []int) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// CaughtUp reports whether a voter (or an observer) has kept up with the
// leader lately.
func CaughtUp(leader, voter Replica) bool {
	if voter.ID == leader.ID {
		return true
	}
	return voter.LastCaughtUp >= 0 && leader.LastCaughtUp-voter.LastCaughtUp <= MaxVoterLagMs
}

// OneLine is an error's message on one line, for a table or a summary.
func OneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// Table prints a row per node, then the problems or "healthy".
func (r Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tID\tBOOTED\tSTAGED\tPUBLISHED\tKAFKA\tVERSION\tQUORUM\tURP\tCERT")
	for _, row := range r.Rows {
		if row.Err != nil {
			fmt.Fprintf(w, "%s\t%s\t%d\tunreachable\t-\t-\t-\t-\t-\t-\t-\n", row.Name, row.Role, row.ID)
			continue
		}
		published := "-"
		switch row.Published {
		case "":
		case row.Bootc.Booted:
			published = "yes"
		case row.Bootc.Staged:
			published = "staged"
		default:
			published = "no"
		}
		quorum := "-"
		switch q := row.Replica; {
		case q != nil && q.Status == "Observer" && row.Role == nodes.Controller:
			quorum = fmt.Sprintf("observer (not a voter), lag %d", q.Lag)
		case q != nil:
			quorum = fmt.Sprintf("%s, lag %d", strings.ToLower(q.Status), q.Lag)
		case row.Role == nodes.Controller && r.Voters != nil:
			quorum = "not in quorum"
		}
		urp := "-"
		if row.URP >= 0 {
			urp = fmt.Sprint(row.URP)
		}
		version := row.Version
		if version == "" {
			version = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, row.Role, row.ID,
			ShortDigest(row.Bootc.Booted), ShortDigest(row.Bootc.Staged), published, row.Unit, version, quorum, urp, row.Expiry(r.At))
	}
	w.Flush()
	if mv := r.MetadataVersion; mv.Finalized != "" {
		fmt.Fprintf(&b, "metadata.version %s finalized; the binaries support up to %s\n", mv.Finalized, mv.SupportedMax)
	}
	switch kv := r.KRaftVersion; kv.Finalized {
	case "":
	case "0":
		fmt.Fprintf(&b, "kraft.version 0 finalized: a static quorum (controller.quorum.voters); the binaries support up to %s\n", kv.SupportedMax)
	default:
		fmt.Fprintf(&b, "kraft.version %s finalized: a dynamic quorum (controller.quorum.bootstrap.servers)\n", kv.Finalized)
	}
	if v := r.Versions(); len(v) > 1 {
		fmt.Fprintf(&b, "Kafka versions differ: %s\n", strings.Join(v, "; "))
	}
	if r.Healthy() {
		b.WriteString("healthy\n")
	} else {
		b.WriteString("unhealthy:\n")
		for _, p := range r.Problems {
			b.WriteString("  " + p + "\n")
		}
	}
	return b.String()
}

// ShortDigest shortens a digest to the 12 hex digits that podman shows,
// "-" for none.
func ShortDigest(digest string) string {
	if digest == "" {
		return "-"
	}
	d := strings.TrimPrefix(digest, "sha256:")
	return d[:min(12, len(d))]
}
