package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
)

// QuorumStep is one change of a dynamic quorum's voters.
type QuorumStep struct {
	// Join makes ID a voter, run on its own controller; otherwise every
	// voter of ID is removed, run on a controller that stays.
	Join bool
	ID   int
	// On is the node that runs it.
	On health.Node
	// Why says what the step is for.
	Why string
}

func (s QuorumStep) String() string {
	if s.Join {
		return fmt.Sprintf("add %d as a voter (on %s): %s", s.ID, s.On.Name, s.Why)
	}
	return fmt.Sprintf("remove voter %d (from %s): %s", s.ID, s.On.Name, s.Why)
}

// planQuorum compares the quorum's voters with the cluster file's
// controllers and lists the steps that make them agree, the joins first
// (growing before shrinking, so that a replaced controller is back before
// another leaves), then the removals, each in id order. It also says what
// it cannot do: a controller of the file that is neither a voter nor an
// observer is not running yet.
func planQuorum(c *nodes.Cluster, rep health.Report, ns []health.Node) (steps []QuorumStep, pending []string, err error) {
	if rep.Quorum == nil {
		return nil, nil, errors.New("the metadata quorum cannot be read")
	}
	byID := map[int]health.Node{}
	var file []int
	for _, n := range ns {
		if n.Role == nodes.Controller {
			byID[n.ID] = n
			file = append(file, n.ID)
		}
	}
	slices.Sort(file)
	voter := map[int]bool{}
	observer := map[int]bool{}
	for _, r := range rep.Quorum {
		if r.Status == "Observer" {
			observer[r.ID] = true
		} else {
			voter[r.ID] = true
		}
	}
	var stay *health.Node
	for _, id := range file {
		if voter[id] && !observer[id] {
			n := byID[id]
			stay = &n
			break
		}
	}
	for _, id := range file {
		n := byID[id]
		switch {
		case observer[id] && voter[id]:
			steps = append(steps, QuorumStep{Join: true, ID: id, On: n, Why: "its data directory is new (its disk was replaced): the voter that lost its data leaves, the node joins under its new directory id"})
		case observer[id]:
			steps = append(steps, QuorumStep{Join: true, ID: id, On: n, Why: "a controller of the cluster file, running as an observer"})
		case !voter[id]:
			pending = append(pending, fmt.Sprintf("%s (%d) is neither a voter nor an observer: start it from its disk (disk --node %s), then run quorum again", n.Name, id, n.Name))
		}
	}
	var gone []int
	for id := range voter {
		if byID[id].Name == "" {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		if stay == nil {
			return nil, nil, fmt.Errorf("voter %d is not in the cluster file, and no controller of the file is a voter to remove it from", id)
		}
		steps = append(steps, QuorumStep{ID: id, On: *stay, Why: "not a controller of the cluster file; retire its machine after"})
	}
	return steps, pending, nil
}

// quorumSafe says why a step would leave the quorum without a majority of
// caught-up voters, or nil. The voters of other node ids are what the
// quorum keeps through the step (a join removes the voter of its own id
// that lost its data before it adds the node), and more than half of them
// must have kept up with the leader; a join also waits for its node to
// catch up.
func quorumSafe(quorum []health.Replica, s QuorumStep) error {
	var leader *health.Replica
	for i, r := range quorum {
		if r.Status == "Leader" {
			leader = &quorum[i]
		}
	}
	if leader == nil {
		return errors.New("the quorum has no leader")
	}
	var others, caught int
	for _, r := range quorum {
		if r.Status == "Observer" || r.ID == s.ID {
			continue
		}
		others++
		if health.CaughtUp(*leader, r) {
			caught++
		}
	}
	if others == 0 {
		return Final(fmt.Errorf("voter %d is the only one: the quorum would have none", s.ID))
	}
	if caught*2 <= others {
		return fmt.Errorf("%d of the %d other voters have caught up with the leader: no majority through the step", caught, others)
	}
	if s.Join {
		for _, r := range quorum {
			if r.ID == s.ID && r.Status == "Observer" && health.CaughtUp(*leader, r) {
				return nil
			}
		}
		return fmt.Errorf("node %d has not caught up with the leader yet", s.ID)
	}
	return nil
}

// done reports whether the quorum shows the step made: a joined node a
// voter and no longer an observer, a removed one no voter.
func (s QuorumStep) done(quorum []health.Replica) bool {
	var voter, observer bool
	for _, r := range quorum {
		if r.ID != s.ID {
			continue
		}
		if r.Status == "Observer" {
			observer = true
		} else {
			voter = true
		}
	}
	if s.Join {
		return voter && !observer
	}
	return !voter
}

// Quorum makes a dynamic quorum's voters the cluster file's controllers,
// one voter at a time (KIP-853): a controller of the file that runs as an
// observer (a new one, or one whose disk was replaced) is added once it
// has caught up, after the voter of its id that lost its data left; a
// voter that the file no longer names is removed. Before each step the
// quorum must keep a majority of caught-up voters after it, and after it
// the quorum must show it, within the timeout. It stops at the first
// failure and says what it did.
func Quorum(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, o Options) (string, error) {
	o = o.withDefaults()
	if !c.Dynamic {
		return "", errors.New("quorum: the cluster file's quorum is static: its voters are controller.quorum.voters, fixed for the cluster's life; quorum changes the voters of a dynamic quorum (quorum: dynamic)")
	}
	rep := health.Check(ctx, run, c, ns)
	rep.ReadDetails(ctx, run, c)
	if change := health.QuorumModeChange(c, rep.KRaftVersion); change != "" {
		return "", errors.New(change)
	}
	steps, pending, err := planQuorum(c, rep, ns)
	if err != nil {
		return "", fmt.Errorf("quorum: %w\n%s", err, rep.Table())
	}
	var b strings.Builder
	b.WriteString("STEP\n")
	if len(steps) == 0 {
		b.WriteString("nothing to change: the voters are the cluster file's controllers\n")
	}
	for _, s := range steps {
		fmt.Fprintf(&b, "%s\n", s)
	}
	for _, p := range pending {
		fmt.Fprintf(&b, "pending: %s\n", p)
	}
	if o.DryRun || len(steps) == 0 {
		return b.String(), nil
	}
	for i, s := range steps {
		fmt.Fprintf(o.Log, "quorum: %s\n", s)
		if err := o.quorumStep(ctx, run, c, ns, s); err != nil {
			var untouched []string
			for _, rest := range steps[i+1:] {
				untouched = append(untouched, "not done: "+rest.String())
			}
			done := strings.Join(doneSteps(steps[:i]), "\n")
			return "", fmt.Errorf("quorum stopped at %q: %w\n%s", s, err, strings.Join(append([]string{orNothing(done)}, untouched...), "\n"))
		}
	}
	return b.String() + "done: the voters are the cluster file's controllers\n", nil
}

func doneSteps(steps []QuorumStep) []string {
	var out []string
	for _, s := range steps {
		out = append(out, "done: "+s.String())
	}
	return out
}

// quorumStep waits until the step is safe, runs it, and waits until the
// quorum shows it, each within the timeout.
func (o Options) quorumStep(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, s QuorumStep) error {
	read := func(ctx context.Context) ([]health.Replica, error) {
		return health.ReadQuorum(ctx, run, c, ns)
	}
	if err := o.Wait(ctx, "a safe moment for it", func(ctx context.Context) error {
		quorum, err := read(ctx)
		if err != nil {
			return err
		}
		if s.done(quorum) {
			return nil
		}
		return quorumSafe(quorum, s)
	}); err != nil {
		return err
	}
	argv := nodes.QuorumJoinAction()
	if !s.Join {
		argv = nodes.QuorumRemoveAction(s.ID)
	}
	out, err := o.step(ctx, run, s.On.Host, argv, 5*time.Minute)
	fmt.Fprintf(o.Log, "%s: %s\n", s.On.Name, strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("%s: %w", s.On.Name, err)
	}
	return o.Wait(ctx, "the quorum to show it", func(ctx context.Context) error {
		quorum, err := read(ctx)
		if err != nil {
			return err
		}
		if !s.done(quorum) {
			return fmt.Errorf("the quorum is %s", describeQuorum(quorum))
		}
		if !slices.ContainsFunc(quorum, func(r health.Replica) bool { return r.Status == "Leader" }) {
			return errors.New("no leader")
		}
		return nil
	})
}

// describeQuorum is the quorum on one line: each voter, then each
// observer, by node id.
func describeQuorum(quorum []health.Replica) string {
	var voters, observers []string
	for _, r := range quorum {
		if r.Status == "Observer" {
			observers = append(observers, fmt.Sprint(r.ID))
		} else {
			voters = append(voters, fmt.Sprintf("%d (%s)", r.ID, strings.ToLower(r.Status)))
		}
	}
	return fmt.Sprintf("voters %s; observers %s", strings.Join(voters, ", "), strings.Join(observers, ", "))
}

// migration says whether a rollout moves a static quorum to a dynamic one
// first (the cluster file says dynamic, the cluster runs kraft.version 0),
// or why it cannot: Kafka 4.1 is the first release that upgrades
// kraft.version, on every node.
func migration(c *nodes.Cluster, rep health.Report) (bool, error) {
	if !c.Dynamic || rep.KRaftVersion.Finalized != "0" {
		return false, nil
	}
	var old []string
	for _, r := range rep.Rows {
		if v, ok := nodes.ParseKafkaVersion(r.Version); !ok || !v.AtLeast(4, 1) {
			old = append(old, fmt.Sprintf("%s runs %s", r.Name, orUnknown(r.Version)))
		}
	}
	if len(old) > 0 {
		return false, fmt.Errorf("rollout: the cluster file's quorum is dynamic and the running one static; moving it needs Kafka 4.1 or later on every node, and %s: roll out Kafka 4.1 or later with quorum: static first", strings.Join(old, ", "))
	}
	return true, nil
}

func orUnknown(v string) string {
	if v == "" {
		return "a version that cannot be read"
	}
	return v
}

// raiseKRaft raises kraft.version to 1 on a broker and waits until the
// cluster shows it: the static quorum's voters, with their directory ids,
// are in the metadata log from then on, and the nodes can move onto the
// dynamic rendering one by one.
func (o Options) raiseKRaft(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node) (string, error) {
	broker, err := featuresBroker(ns)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "%s: raising kraft.version to 1: the static quorum becomes dynamic\n", broker.Name)
	out, err := o.step(ctx, run, broker.Host, c.KRaftUpgradeAction(), 5*time.Minute)
	if err != nil {
		if strings.Contains(err.Error(), "a password is required") || strings.Contains(string(out), "a password is required") {
			return "", fmt.Errorf("%s: its node image predates the step that raises kraft.version (built by an earlier kafka-bootc): roll out a build of the cluster file with quorum: static first, then this one: %w", broker.Name, err)
		}
		return "", fmt.Errorf("%s: raising kraft.version: %w", broker.Name, err)
	}
	err = o.Wait(ctx, "kraft.version 1", func(ctx context.Context) error {
		out, err := health.RunProbe(ctx, run, c, *broker, nodes.ProbeFeatures)
		if err != nil {
			return err
		}
		features, err := health.ParseFeatures(out)
		if err != nil {
			return err
		}
		if got := features["kraft.version"].Finalized; got != "1" {
			return fmt.Errorf("kraft.version is %q", got)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return "kraft.version raised to 1: the quorum is dynamic\n", nil
}
