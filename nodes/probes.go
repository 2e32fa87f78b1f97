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
	ProbeBootc            = "bootc status"
	ProbeUnit             = "kafka unit"
	ProbeQuorum           = "metadata quorum"
	ProbeUnderReplicated  = "under-replicated partitions"
	ProbeUnavailable      = "unavailable partitions"
	sudoersPath           = "/etc/sudoers.d/kafka-bootc"
	kafkaBin              = "/opt/kafka/bin/"
	podmanPath, bootcPath = "/usr/bin/podman", "/usr/bin/bootc"
)

// Probes lists what the checks run on a node of the role: bootc's view of
// its images and the state of its Kafka unit on every node; the metadata
// quorum's replication on controllers; the partitions that lack replicas
// or a leader on brokers. Kafka's own tools run inside the node's Kafka
// container, against the node itself.
func (c *Cluster) Probes(r Role) []Probe {
	ps := []Probe{
		{Name: ProbeBootc, Argv: []string{bootcPath, "status", "--format=json"}, Root: true},
		{Name: ProbeUnit, Argv: []string{"/usr/bin/systemctl", "is-active", r.Unit() + ".service"}},
	}
	exec := func(tool string, args ...string) []string {
		return append([]string{podmanPath, "exec", r.Unit(), kafkaBin + tool}, args...)
	}
	local := "localhost:" + strconv.Itoa(c.Roles[r].Port)
	if r == Controller {
		ps = append(ps, Probe{Name: ProbeQuorum, Root: true,
			Argv: exec("kafka-metadata-quorum.sh", "--bootstrap-controller", local, "describe", "--replication")})
	} else {
		ps = append(ps,
			Probe{Name: ProbeUnderReplicated, Root: true,
				Argv: exec("kafka-topics.sh", "--bootstrap-server", local, "--describe", "--under-replicated-partitions")},
			Probe{Name: ProbeUnavailable, Root: true,
				Argv: exec("kafka-topics.sh", "--bootstrap-server", local, "--describe", "--unavailable-partitions")})
	}
	return ps
}

// sudoers is the role image's sudoers drop-in: members of wheel, as the
// disk user is, may run the role's root probes as root without a password,
// and nothing else that they could not run before. The disk user logs in
// with a key and may have no password to give sudo.
func (c *Cluster) sudoers(r Role) []byte {
	var cmds []string
	for _, p := range c.Probes(r) {
		if !p.Root {
			continue
		}
		words := make([]string, len(p.Argv))
		for i, w := range p.Argv {
			words[i] = sudoersEscape(w)
		}
		cmds = append(cmds, strings.Join(words, " "))
	}
	return fmt.Appendf(nil, `# kafka-bootc's read-only health checks, rendered by kafka-bootc: members of
# wheel may run exactly these commands as root without a password.
Cmnd_Alias KAFKA_BOOTC_PROBES = %s
%%wheel ALL=(root) NOPASSWD: KAFKA_BOOTC_PROBES
`, strings.Join(cmds, ", \\\n\t"))
}

// sudoersEscape escapes the characters that sudoers gives a meaning in a
// command's arguments (sudoers(5): ",", ":", "=" and "\").
func sudoersEscape(word string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `:`, `\:`, `=`, `\=`).Replace(word)
}
