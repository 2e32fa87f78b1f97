package nodes

import (
	"fmt"
	"strconv"
	"strings"
)

// Probe is a read-only command that kafka-bootc's health checks run on a
// node, over SSH as the disk user.
type Probe struct {
	// Name says what the probe reads.
	Name string
	// Argv is the command, with absolute paths: the sudoers drop-in
	// matches commands by path.
	Argv []string
	// Root is set for a probe that needs root; it runs through sudo -n,
	// which the role image's sudoers drop-in allows for exactly this
	// command.
	Root bool
}

// The probes' names.
const (
	ProbeBootc  = "bootc status"
	ProbeUnit   = "kafka unit"
	ProbeQuorum = "metadata quorum"
	// ProbeQuorumStatus is the quorum's status, the cluster id among it.
	ProbeQuorumStatus    = "quorum status"
	ProbeUnderReplicated = "under-replicated partitions"
	ProbeUnavailable     = "unavailable partitions"
	// ProbeAtMinISR lists the partitions whose in-sync replicas are
	// exactly min.insync.replicas (the topic's, or the broker's default):
	// one of those replicas away, and producers with acks=all are refused.
	ProbeAtMinISR    = "partitions at min ISR"
	ProbeLiveBrokers = "live brokers"
	// ProbeVersion is the Kafka version the node's Kafka container runs.
	ProbeVersion = "kafka version"
	// ProbeFeatures is the cluster's feature levels, metadata.version
	// among them: what an upgrade finalizes.
	ProbeFeatures = "features"
)

// Where the probes and steps find what they run: the node's tools by
// absolute path, which is how sudoers matches them, and Kafka's in the
// apache/kafka image.
const (
	sudoersPath           = "/etc/sudoers.d/kafka-bootc"
	kafkaBin              = "/opt/kafka/bin/"
	podmanPath, bootcPath = "/usr/bin/podman", "/usr/bin/bootc"
)

// Probes lists what the checks run on a node of the role: bootc's view of
// its images and the state of its Kafka unit on every node; the metadata
// quorum's replication on controllers; the partitions that lack replicas
// or a leader, and the live brokers, on brokers. Kafka's own tools run
// inside the node's Kafka container, against the node itself.
func (c *Cluster) Probes(r Role) []Probe {
	ps := []Probe{
		{Name: ProbeBootc, Argv: []string{bootcPath, "status", "--format=json"}, Root: true},
		{Name: ProbeUnit, Argv: []string{"/usr/bin/systemctl", "is-active", r.Unit() + ".service"}},
	}
	exec := func(tool, bootstrap string, args ...string) []string {
		return c.kafkaTool(r, tool, bootstrap, args...)
	}
	// Every Kafka tool prints its version with --version and nothing else
	// (CommandLineUtils.maybePrintHelpOrVersion).
	ps = append(ps, Probe{Name: ProbeVersion, Root: true,
		Argv: []string{podmanPath, "exec", r.Unit(), kafkaBin + "kafka-topics.sh", "--version"}})
	if r == Controller {
		ps = append(ps, Probe{Name: ProbeQuorum, Root: true,
			Argv: exec("kafka-metadata-quorum.sh", "--bootstrap-controller", "describe", "--replication")},
			Probe{Name: ProbeQuorumStatus, Root: true,
				Argv: exec("kafka-metadata-quorum.sh", "--bootstrap-controller", "describe", "--status")})
	} else {
		ps = append(ps,
			Probe{Name: ProbeUnderReplicated, Root: true,
				Argv: exec("kafka-topics.sh", "--bootstrap-server", "--describe", "--under-replicated-partitions")},
			Probe{Name: ProbeUnavailable, Root: true,
				Argv: exec("kafka-topics.sh", "--bootstrap-server", "--describe", "--unavailable-partitions")},
			Probe{Name: ProbeAtMinISR, Root: true,
				Argv: exec("kafka-topics.sh", "--bootstrap-server", "--describe", "--at-min-isr-partitions")},
			// The brokers in the cluster's metadata: in KRaft, the
			// registered brokers that are not fenced.
			Probe{Name: ProbeLiveBrokers, Root: true,
				Argv: exec("kafka-broker-api-versions.sh", "--bootstrap-server")},
			Probe{Name: ProbeFeatures, Root: true,
				Argv: exec("kafka-features.sh", "--bootstrap-server", "describe")})
	}
	return ps
}

// The steps of a rollout on a node, all as root: stage what the node's tag
// points to, reboot into it, or go back to the deployment before.
var (
	ActionStage    = []string{bootcPath, "upgrade"}
	ActionReboot   = []string{"/usr/bin/systemctl", "reboot"}
	ActionRollback = []string{bootcPath, "rollback"}
)

// The TLS files that renew-certificates and trust replace on a running
// node, by their names in the node's TLS directory.
const (
	NodePEMFile = "node.pem"
	CACertFile  = "ca.crt"
)

// TLSToolPath is the role image's tool that installs a node's new TLS
// files (see tlsTool); sudoers allows it exactly the commands below.
const TLSToolPath = "/usr/libexec/kafka-bootc/tls"

// The steps of a certificate renewal or a trust rollout on a node, all as
// root: install a new file read from standard input, keeping the one it
// replaces; put that one back; print the trust store.
func InstallTLS(file string) []string { return []string{TLSToolPath, "install", file} }
func RestoreTLS(file string) []string { return []string{TLSToolPath, "restore", file} }

// ActionShowTrust prints the node's trust store, its CA certificates.
var ActionShowTrust = []string{TLSToolPath, "show", CACertFile}

// Restarts are the commands that restart the units of a node of the role
// that read its TLS files: Kafka and node-exporter, whose units create
// their podman secrets from the files at every start.
func Restarts(r Role) [][]string {
	return [][]string{
		{"/usr/bin/systemctl", "restart", r.Unit() + ".service"},
		{"/usr/bin/systemctl", "restart", ExporterUnit + ".service"},
	}
}

// tlsSteps are every root command of a renewal or trust rollout on a node
// of the role.
func tlsSteps(r Role) [][]string {
	steps := [][]string{
		InstallTLS(NodePEMFile), InstallTLS(CACertFile),
		RestoreTLS(NodePEMFile), RestoreTLS(CACertFile),
		ActionShowTrust,
	}
	return append(steps, Restarts(r)...)
}

// kafkaTool runs a Kafka tool in the node's Kafka container against the
// node itself. In TLS mode the client settings follow the bootstrap
// address, before any subcommand: kafka-metadata-quorum.sh and
// kafka-features.sh read options after their subcommand as its own.
func (c *Cluster) kafkaTool(r Role, tool, bootstrap string, args ...string) []string {
	argv := []string{podmanPath, "exec", r.Unit(), kafkaBin + tool, bootstrap, "localhost:" + strconv.Itoa(c.Roles[r].Port)}
	if c.TLS {
		argv = append(argv, "--command-config", ctrClientProperties)
	}
	return append(argv, args...)
}

// FinalizeAction raises the cluster's metadata.version to the release of
// the cluster's Kafka image, once every node runs it: after it, the nodes
// cannot go back to an older Kafka. It runs on a broker, as root.
//
// It raises metadata.version alone, as Strimzi does, with
// "kafka-features.sh upgrade --metadata <release>": the one way that 3.8
// has (FeatureCommand at 3.8.0), and one that 3.9 and 4.x keep, deprecated
// in favour of --release-version. --release-version would raise every
// feature to the release's default too, kraft.version among them, and
// kraft.version 1 turns a static quorum into a dynamic one (KAFKA-16538,
// 4.1), which needs the controllers' configuration changed with it. The
// other features (group.version, transaction.version, ...) stay where they
// are, for the operator to raise with kafka-features.sh.
func (c *Cluster) FinalizeAction() []string {
	return c.kafkaTool(Broker, "kafka-features.sh", "--bootstrap-server", "upgrade", "--metadata", c.KafkaVersion.Release())
}

// Probe finds the role's probe of the given name.
func (c *Cluster) Probe(r Role, name string) (Probe, bool) {
	for _, p := range c.Probes(r) {
		if p.Name == name {
			return p, true
		}
	}
	return Probe{}, false
}

// Command is the probe's command line as the disk user runs it: through
// sudo -n when it needs root.
func (p Probe) Command() []string {
	if p.Root {
		return AsRoot(p.Argv)
	}
	return p.Argv
}

// AsRoot runs a command through sudo -n, which fails rather than asks for
// a password: the sudoers drop-in allows the probes and steps without one.
func AsRoot(argv []string) []string {
	return append([]string{"sudo", "-n"}, argv...)
}

// sudoers is the role image's sudoers drop-in: members of wheel, as the
// disk user is, may run the role's root probes and the rollout's steps as
// root without a password, and, in tls mode, the steps that renew the
// node's certificate or its trust store; nothing else that they could not
// run before. The disk user logs in with a key and may have no password to
// give sudo. The steps only ever move a node to what its registry serves
// under its tag, or back, and install TLS files that the caller hands over
// (which a member of wheel could not read: the node's key stays root's).
func (c *Cluster) sudoers(r Role) []byte {
	var probes []string
	for _, p := range c.Probes(r) {
		if p.Root {
			probes = append(probes, sudoersCommand(p.Argv))
		}
	}
	var steps []string
	for _, a := range [][]string{ActionStage, ActionReboot, ActionRollback} {
		steps = append(steps, sudoersCommand(a))
	}
	if r == Broker {
		steps = append(steps, sudoersCommand(c.FinalizeAction()))
		if c.KafkaVersion.AtLeast(4, 1) {
			steps = append(steps, sudoersCommand(c.KRaftUpgradeAction()))
		}
	}
	if r == Controller && c.Dynamic {
		steps = append(steps, quorumSudoers()...)
	}
	aliases := []string{"KAFKA_BOOTC_PROBES", "KAFKA_BOOTC_STEPS"}
	tls := ""
	if c.TLS {
		var cmds []string
		for _, a := range tlsSteps(r) {
			cmds = append(cmds, sudoersCommand(a))
		}
		tls = "Cmnd_Alias KAFKA_BOOTC_TLS = " + strings.Join(cmds, ", \\\n\t") + "\n"
		aliases = append(aliases, "KAFKA_BOOTC_TLS")
	}
	return fmt.Appendf(nil, `# kafka-bootc's health checks, rollout and TLS steps, rendered by kafka-bootc:
# members of wheel may run exactly these commands as root without a password.
Cmnd_Alias KAFKA_BOOTC_PROBES = %s
Cmnd_Alias KAFKA_BOOTC_STEPS = %s
%s%%wheel ALL=(root) NOPASSWD: %s
`, strings.Join(probes, ", \\\n\t"), strings.Join(steps, ", \\\n\t"), tls, strings.Join(aliases, ", "))
}

// sudoersCommand writes a command as a sudoers rule matches it: exactly
// these arguments, and no others.
func sudoersCommand(argv []string) string {
	words := make([]string, len(argv))
	for i, w := range argv {
		words[i] = sudoersEscape(w)
	}
	if len(argv) == 1 {
		// A command alone would allow any arguments; "" allows none.
		words = append(words, `""`)
	}
	return strings.Join(words, " ")
}

// sudoersEscape escapes the characters that sudoers gives a meaning in a
// command's arguments (sudoers(5): ",", ":", "=" and "\").
func sudoersEscape(word string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `:`, `\:`, `=`, `\=`).Replace(word)
}
