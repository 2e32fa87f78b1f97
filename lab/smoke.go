package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/rollout"

	"github.com/distribution/reference"
)

// Step results.
const (
	Passed  = "ok"
	Skipped = "skipped"
	Failed  = "FAILED"
)

// Step is one line of the smoke test's table.
type Step struct {
	Name   string
	Result string
	Took   time.Duration
	Detail string
}

// Report is what the smoke test did.
type Report struct {
	Steps []Step
	// Err is the first step that failed, with its node's console where a
	// VM failed; nil when every step passed or was skipped.
	Err error
}

// Table prints the steps, then "smoke: passed" or the failure.
func (r Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STEP\tRESULT\tSECONDS\tDETAIL")
	for _, s := range r.Steps {
		secs := "-"
		if s.Result != Skipped {
			secs = fmt.Sprintf("%.1f", s.Took.Seconds())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Name, s.Result, secs, strings.ReplaceAll(s.Detail, "\n", "; "))
	}
	w.Flush()
	if r.Err != nil {
		fmt.Fprintf(&b, "smoke: failed: %v\n", r.Err)
	} else {
		fmt.Fprintln(&b, "smoke: passed")
	}
	return b.String()
}

// Kafka is a client of the lab's cluster, with Kafka's own tools: what the
// steps that need a real Kafka use.
type Kafka interface {
	// CreateTopic creates a topic with the replication factor.
	CreateTopic(ctx context.Context, topic string, replicas int) error
	// Produce writes the records to the topic, acknowledged by all
	// in-sync replicas.
	Produce(ctx context.Context, topic string, records []string) error
	// Consume reads n records of the topic from its beginning.
	Consume(ctx context.Context, topic string, n int) ([]string, error)
	// OtherCARefused checks that a client whose certificate another CA
	// signed is refused at the TLS handshake.
	OtherCARefused(ctx context.Context) error
}

// Smoke is the smoke test of a lab: boot, SSH, the network, health, and
// Kafka over mutual TLS.
type Smoke struct {
	Plan    *Plan
	Cluster *nodes.Cluster
	// Run reaches the nodes at their lab addresses.
	Run Runner
	// Kafka runs the Kafka steps; nil skips them, saying why.
	Kafka Kafka
	// Records is how many records the Kafka steps write and read back.
	Records int
	// Upgrade maps node names to the images to roll the lab onto at the
	// end (as build-all printed them, pinned by digest); none skips the
	// rollout step. The VMs must reach the registry (Options.Outbound).
	Upgrade map[string]string
	// BootTimeout bounds each VM's boot to SSH; HealthTimeout the wait for
	// a healthy cluster, after the boot and after the reboot.
	BootTimeout, HealthTimeout, Poll time.Duration
	Log                              io.Writer
	// boot starts the lab: Start, unless a test gives nodes of its own.
	boot func(context.Context, *Plan, io.Writer) (*Lab, error)
}

// Start boots the lab, runs every step and stops at the first that fails.
// It returns the lab, running, for the caller to stop (or keep, for up).
func (s Smoke) Start(ctx context.Context) (*Lab, Report) {
	var rep Report
	var l *Lab
	step := func(name string, f func() (string, error)) bool {
		if rep.Err != nil {
			return false
		}
		fmt.Fprintf(s.Log, "smoke: %s\n", name)
		start := time.Now()
		detail, err := f()
		st := Step{Name: name, Result: Passed, Took: time.Since(start), Detail: detail}
		if err != nil {
			st.Result, rep.Err = Failed, fmt.Errorf("%s: %w", name, err)
			st.Detail = firstLine(err.Error())
		}
		rep.Steps = append(rep.Steps, st)
		return err == nil
	}
	skip := func(why string, names ...string) {
		for _, n := range names {
			rep.Steps = append(rep.Steps, Step{Name: n, Result: Skipped, Detail: why})
		}
	}
	kafkaSteps := []string{"topic", "produce and consume", "other CA refused", "broker reboot keeps data"}
	// rolloutStep ends the smoke test: the lab onto the upgrade's images,
	// node by node, with rollout's own health gates, and the records read
	// back after it.
	rolloutStep := func(wrote bool, records []string, topic string, targets []health.Node) {
		if len(s.Upgrade) == 0 {
			skip("no images to upgrade to", "rollout")
			return
		}
		step("rollout", func() (string, error) {
			for i := range targets {
				ref := s.Upgrade[targets[i].Node.Name]
				if ref == "" {
					return "", fmt.Errorf("no image to upgrade %s to", targets[i].Node.Name)
				}
				named, err := reference.ParseNormalizedNamed(ref)
				d, ok := named.(reference.Digested)
				if err != nil || !ok {
					return "", fmt.Errorf("%s: %q is not pinned by digest", targets[i].Node.Name, ref)
				}
				targets[i].Published = d.Digest().String()
			}
			out, err := rollout.Run(ctx, s.Run, s.Cluster, targets, rollout.Options{Timeout: s.HealthTimeout, Poll: s.Poll, Log: s.Log})
			if err != nil {
				return "", err
			}
			moved := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.HasSuffix(strings.TrimSpace(line), "moved") {
					moved++
				}
			}
			detail := fmt.Sprintf("%d of %d nodes moved to their new images", moved, len(targets))
			if wrote {
				got, err := readBack(ctx, s.Kafka, topic, records)
				if err != nil {
					return "", fmt.Errorf("after the rollout: %w", err)
				}
				detail += "; " + got
			}
			return detail, nil
		})
	}

	step("boot", func() (string, error) {
		boot := s.boot
		if boot == nil {
			boot = Start
		}
		var err error
		l, err = boot(ctx, s.Plan, s.Log)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d VMs with %s (%s)", len(s.Plan.VMs), s.Plan.Accel, s.Plan.AccelWhy), nil
	})
	step("ssh", func() (string, error) {
		took, err := l.WaitSSH(ctx, s.Run, s.BootTimeout, s.Poll)
		if err != nil {
			return "", err
		}
		slowest := ""
		for n, d := range took {
			if slowest == "" || d > took[slowest] || d == took[slowest] && n < slowest {
				slowest = n
			}
		}
		return fmt.Sprintf("every node answers as its hostname; the last, %s, after %.0f s", slowest, took[slowest].Seconds()), nil
	})
	step("network", func() (string, error) { return Reachable(ctx, s.Run, s.Plan) })
	bootc := false
	step("disks", func() (string, error) {
		var err error
		bootc, err = BootcSystems(ctx, s.Run, s.Plan)
		if err != nil || bootc {
			return "bootc: every node booted a bootc deployment", err
		}
		return "stand-ins: no node is a bootc system (no /run/ostree-booted)", nil
	})
	if rep.Err != nil {
		return l, rep
	}
	if !bootc {
		skip("needs bootc disks that run Kafka", append(append([]string{"health"}, kafkaSteps...), "rollout")...)
		return l, rep
	}
	targets := s.targets()
	step("health", func() (string, error) { return WaitHealthy(ctx, s.Run, s.Cluster, targets, s.HealthTimeout, s.Poll) })
	if rep.Err != nil {
		return l, rep
	}
	if s.Kafka == nil || !s.Cluster.TLS {
		why := "no client: give the cluster CA's certificate and key"
		if !s.Cluster.TLS {
			why = "the cluster is plaintext: these steps check mutual TLS"
		}
		skip(why, kafkaSteps...)
		rolloutStep(false, nil, "", targets)
		return l, rep
	}
	topic := fmt.Sprintf("kafka-bootc-smoke-%d", time.Now().Unix())
	records := make([]string, max(s.Records, 1))
	for i := range records {
		records[i] = fmt.Sprintf("%s record %d", topic, i+1)
	}
	brokers := 0
	for _, vm := range s.Plan.VMs {
		if vm.Node.Role == nodes.Broker {
			brokers++
		}
	}
	replicas := min(3, brokers)
	step("topic", func() (string, error) {
		return fmt.Sprintf("%s, replication factor %d", topic, replicas), s.Kafka.CreateTopic(ctx, topic, replicas)
	})
	step("produce and consume", func() (string, error) {
		if err := s.Kafka.Produce(ctx, topic, records); err != nil {
			return "", err
		}
		return readBack(ctx, s.Kafka, topic, records)
	})
	step("other CA refused", func() (string, error) {
		return "a client of another CA fails the TLS handshake", s.Kafka.OtherCARefused(ctx)
	})
	step("broker reboot keeps data", func() (string, error) {
		broker := s.Plan.VMs[slices.IndexFunc(s.Plan.VMs, func(vm VM) bool { return vm.Node.Role == nodes.Broker })]
		if err := Reboot(ctx, s.Run, broker, s.BootTimeout, s.Poll); err != nil {
			return "", &BootError{Node: broker.Node.Name, Err: err, Console: l.Console(broker, 20)}
		}
		if _, err := WaitHealthy(ctx, s.Run, s.Cluster, targets, s.HealthTimeout, s.Poll); err != nil {
			return "", err
		}
		got, err := readBack(ctx, s.Kafka, topic, records)
		return broker.Node.Name + " rebooted; " + got, err
	})
	if rep.Err == nil {
		rolloutStep(true, records, topic, targets)
	}
	return l, rep
}

func (s Smoke) targets() []health.Node {
	var ts []health.Node
	for _, vm := range s.Plan.VMs {
		ts = append(ts, health.Node{Node: vm.Node, Host: vm.IP.String()})
	}
	return ts
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func readBack(ctx context.Context, k Kafka, topic string, records []string) (string, error) {
	got, err := k.Consume(ctx, topic, len(records))
	if err != nil {
		return "", err
	}
	want := slices.Clone(records)
	slices.Sort(want)
	got = slices.Clone(got)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return "", fmt.Errorf("read back %d records, not the %d written (first: %q)", len(got), len(records), firstOf(got))
	}
	return fmt.Sprintf("%d records written and read back", len(records)), nil
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// Reachable checks that every node reaches every other node's SSH server
// under its hostname: each connection is opened by the node itself
// (through its SSH server, as ssh -L does), so the node's own resolver
// finds the name, and the other's sshd must answer.
func Reachable(ctx context.Context, run Runner, p *Plan) (string, error) {
	pairs := 0
	for _, from := range p.VMs {
		for _, to := range p.VMs {
			if from.Node.Name == to.Node.Name {
				continue
			}
			if err := sshBanner(ctx, run, from.IP.String(), net.JoinHostPort(to.Node.Hostname, "22")); err != nil {
				return "", fmt.Errorf("%s cannot reach %s by its name: %w", from.Node.Name, to.Node.Hostname, err)
			}
			pairs++
		}
	}
	return fmt.Sprintf("every node reaches every other by its hostname (%d pairs)", pairs), nil
}

func sshBanner(ctx context.Context, run Runner, host, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := run.Dial(ctx, host, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(d)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("%s answers %q, not an SSH server (%v)", addr, strings.TrimSpace(line), err)
	}
	return nil
}

// BootcSystems says whether the nodes booted bootc deployments, as
// /run/ostree-booted marks them. Some but not all is an error: the
// disks are not one build's.
func BootcSystems(ctx context.Context, run Runner, p *Plan) (bool, error) {
	var yes, no []string
	for _, vm := range p.VMs {
		if _, err := run.Run(ctx, vm.IP.String(), []string{"test", "-e", "/run/ostree-booted"}); err != nil {
			no = append(no, vm.Node.Name)
		} else {
			yes = append(yes, vm.Node.Name)
		}
	}
	if len(yes) > 0 && len(no) > 0 {
		return false, fmt.Errorf("%s booted bootc deployments, %s did not: the disks are not one build's", strings.Join(yes, ", "), strings.Join(no, ", "))
	}
	return len(no) == 0, nil
}

// WaitHealthy runs health's checks until the cluster is healthy, and
// fails with the last report's problems after timeout.
func WaitHealthy(ctx context.Context, run Runner, c *nodes.Cluster, targets []health.Node, timeout, poll time.Duration) (string, error) {
	start := time.Now()
	err := rollout.Options{Timeout: timeout, Poll: poll}.Wait(ctx, "a healthy cluster", func(ctx context.Context) error {
		if rep := health.Check(ctx, run, c, targets); !rep.Healthy() {
			return errors.New(strings.Join(rep.Problems, "; "))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("healthy after %.0f s: %d nodes", time.Since(start).Seconds(), len(targets)), nil
}

// Reboot reboots a VM through its sudoers-allowed systemctl reboot, and
// waits until it answers again with a new boot id.
func Reboot(ctx context.Context, run Runner, vm VM, timeout, poll time.Duration) error {
	host := vm.IP.String()
	before, err := run.Run(ctx, host, []string{"cat", "/proc/sys/kernel/random/boot_id"})
	if err != nil {
		return fmt.Errorf("reading its boot id: %w", err)
	}
	// The connection drops with the reboot; whether the command says so
	// or not, the boot id tells.
	run.Run(ctx, host, nodes.AsRoot(nodes.ActionReboot))
	return rollout.Options{Timeout: timeout, Poll: poll}.Wait(ctx, vm.Node.Name+" to come back from its reboot", func(ctx context.Context) error {
		after, err := run.Run(ctx, host, []string{"cat", "/proc/sys/kernel/random/boot_id"})
		if err == nil && strings.TrimSpace(string(after)) == strings.TrimSpace(string(before)) {
			return errors.New("still the same boot")
		}
		return err
	})
}
