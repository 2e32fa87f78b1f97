// Package rollout moves a running cluster to its published node images,
// one node at a time, with a health gate after each, the way Strimzi's
// KafkaRoller rolls a Kafka cluster (cluster-operator/src/main/java/io/
// strimzi/operator/cluster/operator/resource/KafkaRoller.java). It reaches
// nodes through the same Runner as package health.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
)

// Step is what the rollout does with one node.
type Step struct {
	health.Node
	// Current is the digest the node runs; Target the one it moves to.
	Current, Target string
	// Skip is set for a node that already runs its target: a rerun after a
	// failure resumes where the failure stopped it.
	Skip bool
}

// plan orders the nodes (see order); each node's target is its Published
// digest, which Run has checked is there.
func plan(rep health.Report) []Step {
	var steps []Step
	for _, r := range order(rep) {
		steps = append(steps, Step{Node: r.Node, Current: r.Bootc.Booted, Target: r.Published, Skip: r.Bootc.Booted == r.Published})
	}
	return steps
}

// attemptTimeout bounds one look while waiting: Kafka's tools give up on a
// broker within a minute (the admin client's default.api.timeout.ms).
const attemptTimeout = 2 * time.Minute

// Options tune a rollout.
type Options struct {
	// Timeout bounds each wait: for the node to come back, for its Kafka
	// unit, and for the cluster to be healthy again.
	Timeout time.Duration
	// Poll is the time between two looks while waiting.
	Poll time.Duration
	// Rollback, when set, moves a node that failed back to the deployment
	// it ran before, and reboots it.
	Rollback bool
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// NoFinalize leaves metadata.version as it is after a rollout that
	// changed the Kafka version (see Finalize).
	NoFinalize bool
	// Log receives the progress, a line per step.
	Log io.Writer
	// Sleep waits; tests replace it.
	Sleep func(context.Context, time.Duration) error
	// Now tells the time; tests replace it.
	Now func() time.Time
}

// withDefaults fills in what the caller left out.
func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	if o.Poll == 0 {
		o.Poll = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) sleep(ctx context.Context, d time.Duration) error {
	if o.Sleep != nil {
		return o.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run moves every node of ns to its Published digest. It refuses to start
// unless the cluster is healthy, stops at the first failure and leaves
// every node after it untouched. It returns what it did, a line per node.
func Run(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, o Options) (string, error) {
	o = o.withDefaults()
	for _, n := range ns {
		if n.Published == "" {
			return "", fmt.Errorf("%s: no target image: its published digest is not known (set the cluster file's registry, whose tags are looked up, or give --published)", n.Name)
		}
	}
	rep := health.Check(ctx, run, c, ns)
	rep.ReadDetails(ctx, run, c)
	if err := checkNoDowngrade(c, rep); err != nil {
		return "", err
	}
	migrate, err := migration(c, rep)
	if err != nil {
		return "", err
	}
	first := ""
	if migrate {
		// The rollout is what moves it: not a reason to refuse.
		rep.Problems = slices.DeleteFunc(rep.Problems, func(p string) bool { return p == health.StaticToDynamic })
		first = "first: raise kraft.version to 1 (the static quorum becomes dynamic), then move every node onto the dynamic rendering\n"
	}
	steps := plan(rep)
	table := newReport(column{"NODE", 20}, column{"CURRENT", 14}, column{"TARGET", 14})
	cols := func(s Step) []string {
		return []string{s.Name, health.ShortDigest(s.Current), health.ShortDigest(s.Target)}
	}
	if o.DryRun {
		for _, s := range steps {
			table.line(cols(s), map[bool]string{true: "up to date", false: "would move"}[s.Skip])
		}
		return first + table.String() + o.finalizePlan(c, rep) + refusal("a rollout", rep), nil
	}
	if !rep.Healthy() {
		return "", fmt.Errorf("refusing to start: the cluster is unhealthy\n%s", rep.Table())
	}
	if migrate {
		if first, err = o.raiseKRaft(ctx, run, c, ns); err != nil {
			return "", fmt.Errorf("rollout stopped before any node moved: %w", err)
		}
	}
	var changes []change
	for _, s := range steps {
		ch := change{node: s.Node, cols: cols(s),
			do: func(ctx context.Context) error {
				fmt.Fprintf(o.Log, "%s: moving from %s to %s\n", s.Name, health.ShortDigest(s.Current), health.ShortDigest(s.Target))
				return o.move(ctx, run, c, ns, s)
			}}
		if s.Skip {
			ch.skip = "up to date"
		}
		if o.Rollback {
			ch.undo = func(ctx context.Context) (string, error) {
				return o.rollback(ctx, run, c, ns, s)
			}
		}
		changes = append(changes, ch)
	}
	out, err := apply(ctx, "rollout", "moved", table, changes, o.Log)
	if err != nil {
		return "", fmt.Errorf("%s%w", first, err)
	}
	out = first + out
	// The new images allow reading metadata.version even where the old
	// ones did not.
	after := health.Check(ctx, run, c, ns)
	after.ReadDetails(ctx, run, c)
	if done, err := finalizeState(c, after); done || err != nil {
		return out, nil
	}
	if o.NoFinalize {
		return out + fmt.Sprintf("metadata.version stays %s (--no-finalize): every node runs the new Kafka, and can still go back; finalize with running ... finalize\n", after.MetadataVersion.Finalized), nil
	}
	msg, err := o.finalize(ctx, run, c, ns, after)
	if err != nil {
		return "", fmt.Errorf("every node moved, but %w\n%s", err, out)
	}
	return out + msg, nil
}

// checkNoDowngrade refuses a rollout to a Kafka older than the cluster's
// finalized metadata.version: its binaries cannot read the metadata.
func checkNoDowngrade(c *nodes.Cluster, rep health.Report) error {
	mv, release, cmp, ok := metadataGap(c, rep)
	if !ok || cmp <= 0 {
		return nil
	}
	return fmt.Errorf("refusing to start: the cluster's metadata.version %s is finalized, and Kafka %s (%s) cannot run it; a finalized upgrade cannot be undone", mv, release, c.KafkaImage)
}

// finalizePlan is the dry run's line on finalization, when the rollout
// changes the Kafka release.
func (o Options) finalizePlan(c *nodes.Cluster, rep health.Report) string {
	mv, release, cmp, ok := metadataGap(c, rep)
	if !ok || cmp >= 0 {
		return ""
	}
	if o.NoFinalize {
		return fmt.Sprintf("then: metadata.version stays %s (--no-finalize); finalize later with running ... finalize\n", mv)
	}
	return fmt.Sprintf("then: finalize metadata.version %s to %s, once every node runs it and the cluster is healthy; after it, no node can go back\n", mv, release)
}

// refusal says why a run would refuse to start now, after a dry run's
// plan; nothing when the cluster is healthy.
func refusal(what string, rep health.Report) string {
	if rep.Healthy() {
		return ""
	}
	var b strings.Builder
	b.WriteString(what + " would refuse to start now: the cluster is unhealthy:\n")
	for _, p := range rep.Problems {
		b.WriteString("  " + p + "\n")
	}
	return b.String()
}

// move stages the node's target, reboots into it and waits for the node,
// its Kafka unit and the cluster's health.
func (o Options) move(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, s Step) error {
	status := func(ctx context.Context) (health.Bootc, error) {
		out, err := health.RunProbe(ctx, run, c, s.Node, nodes.ProbeBootc)
		if err != nil {
			return health.Bootc{}, err
		}
		return health.ParseBootc(out)
	}
	fmt.Fprintf(o.Log, "%s: staging the image its tag points to\n", s.Name)
	if _, err := o.step(ctx, run, s.Host, nodes.ActionStage, o.Timeout); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	st, err := status(ctx)
	if err != nil {
		return fmt.Errorf("after staging: %w", err)
	}
	if st.Staged != s.Target {
		return fmt.Errorf("staged %s, want %s: the tag moved since the rollout started, or the registry serves another image", orNothing(st.Staged), s.Target)
	}
	// Staging takes minutes, in which another node may have gone: the
	// cluster is judged again immediately before this node goes away.
	if err := o.restartGate(ctx, run, c, ns, s.Node); err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "%s: rebooting into %s\n", s.Name, health.ShortDigest(s.Target))
	// The connection drops with the reboot; whether the command says so
	// first is up to the node.
	o.step(ctx, run, s.Host, nodes.ActionReboot, attemptTimeout)
	if err := o.Wait(ctx, "booting "+health.ShortDigest(s.Target), func(ctx context.Context) error {
		st, err := status(ctx)
		if err != nil {
			return err
		}
		if st.Booted != s.Target {
			return fmt.Errorf("booted %s", health.ShortDigest(st.Booted))
		}
		return nil
	}); err != nil {
		return err
	}
	return o.gate(ctx, run, c, ns, s.Node)
}

// step runs one root command of an operation on a node, for at most
// limit: a stuck bootc or systemctl must not hold the operation.
func (o Options) step(ctx context.Context, run health.Runner, host string, argv []string, limit time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, err := run.Run(ctx, host, nodes.AsRoot(argv))
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return out, fmt.Errorf("%s: no end within %s: %w", strings.Join(argv, " "), limit, err)
	}
	return out, err
}

// restartGate waits until node n may go away: the cluster healthy, and
// nothing that n's absence would cost beyond n itself (see
// health.Report.RestartBlockers). A blocker that waiting cannot clear
// stops it at once.
func (o Options) restartGate(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, n health.Node) error {
	return o.Wait(ctx, "a safe moment to restart "+n.Name, func(ctx context.Context) error {
		rep := health.Check(ctx, run, c, ns)
		if !rep.Healthy() {
			return errors.New(strings.Join(rep.Problems, "; "))
		}
		blockers, err := rep.RestartBlockers(ctx, run, c, n)
		if errors.Is(err, health.ErrProbeNotAllowed) {
			fmt.Fprintf(o.Log, "%s: %v; going on with the health gate alone, as before it existed (this rollout brings it)\n", n.Name, err)
			return nil
		}
		if err != nil {
			return err
		}
		var whys []string
		lasting := false
		for _, b := range blockers {
			whys = append(whys, b.Why)
			lasting = lasting || b.Lasting
		}
		if len(whys) == 0 {
			return nil
		}
		err = errors.New(strings.Join(whys, "; "))
		if lasting {
			return Final(err)
		}
		return err
	})
}

// gate waits for the node's Kafka unit to be active, then for the whole
// cluster to be healthy again: every voter caught up, no partition
// under-replicated (KafkaRoller's canRoll asks the same of the quorum and
// of the partitions before each restart).
func (o Options) gate(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, n health.Node) error {
	if err := o.Wait(ctx, "the Kafka unit", func(ctx context.Context) error {
		out, err := health.RunProbe(ctx, run, c, n, nodes.ProbeUnit)
		if state := strings.TrimSpace(string(out)); state != "active" {
			return fmt.Errorf("it is %s (%v)", state, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return o.Wait(ctx, "the cluster's health", func(ctx context.Context) error {
		if rep := health.Check(ctx, run, c, ns); !rep.Healthy() {
			return errors.New(strings.Join(rep.Problems, "; "))
		}
		return nil
	})
}

// rollback boots the node back into the deployment it ran before, when it
// moved: a node that failed before its reboot still runs what it ran, and
// is left alone. It is not restarted while another node is away: the
// failure may be that node's, and a second node down is what a rollout
// never causes.
func (o Options) rollback(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, s Step) (string, error) {
	out, err := health.RunProbe(ctx, run, c, s.Node, nodes.ProbeBootc)
	if err != nil {
		return "not rolled back: its state cannot be read", err
	}
	st, err := health.ParseBootc(out)
	if err != nil {
		return "not rolled back: its state cannot be read", err
	}
	if st.Booted == s.Current {
		said := "not rolled back: it still runs " + health.ShortDigest(s.Current)
		if st.Staged != "" {
			said += ", with " + health.ShortDigest(st.Staged) + " staged for its next boot"
		}
		return said, nil
	}
	if err := othersAway(ctx, run, c, ns, s.Node); err != nil {
		return "not rolled back", fmt.Errorf("%w: roll it back by hand (bootc rollback, then a reboot) once the other node is back", err)
	}
	fmt.Fprintf(o.Log, "%s: rolling back to %s\n", s.Name, health.ShortDigest(s.Current))
	if _, err := o.step(ctx, run, s.Host, nodes.ActionRollback, o.Timeout); err != nil {
		return "rollback", err
	}
	o.step(ctx, run, s.Host, nodes.ActionReboot, attemptTimeout)
	return "rolled back", nil
}

// othersAway says which node other than n is away (unreachable, or its
// Kafka unit not active): restarting n then would take a second node down.
func othersAway(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, n health.Node) error {
	rep := health.Check(ctx, run, c, ns)
	for _, r := range rep.Rows {
		if r.Name != n.Name && (r.Err != nil || r.Unit != "active") {
			return fmt.Errorf("%s is away too; restarting %s now would take a second node down", r.Name, n.Name)
		}
	}
	return nil
}

// Final marks an error that waiting cannot clear: Wait returns it at once.
func Final(err error) error { return final{err} }

type final struct{ error }

func (f final) Unwrap() error { return f.error }

// Wait polls ready every Poll until it answers nil, for at most Timeout.
// Each look gets at most attemptTimeout: a node that reboots can leave a
// connection that never answers. The lab waits with it too.
func (o Options) Wait(ctx context.Context, what string, ready func(context.Context) error) error {
	var last error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(attemptTimeout, o.Timeout))
		last = ready(actx)
		cancel()
		if last == nil {
			return nil
		}
		if errors.As(last, new(final)) {
			return fmt.Errorf("waiting for %s: %w", what, last)
		}
		if time.Duration(attempt+1)*o.Poll > o.Timeout {
			return fmt.Errorf("waiting for %s: gave up after %s: %v", what, o.Timeout, last)
		}
		if err := o.sleep(ctx, o.Poll); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}

func orNothing(d string) string {
	if d == "" {
		return "nothing"
	}
	return d
}
