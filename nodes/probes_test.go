package nodes

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSudoersAllowsExactlyTheRootProbes checks the role images' sudoers
// drop-in with sudo's own parser (visudo -c), and that it names every
// probe that needs root, escaped as sudoers(5) requires, and no other.
func TestSudoersAllowsExactlyTheRootProbes(t *testing.T) {
	visudo, err := exec.LookPath("visudo")
	if err != nil {
		t.Skip("skipped: visudo (Debian's sudo) is not installed")
	}
	c := plan(t, Default())
	for _, r := range Roles {
		file := filepath.Join(t.TempDir(), "kafka-bootc")
		if err := os.WriteFile(file, c.sudoers(r), 0o440); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(visudo, "-c", "-f", file).CombinedOutput(); err != nil {
			t.Errorf("%s: visudo refuses the drop-in: %v\n%s\n%s", r, err, out, c.sudoers(r))
		}
		got := string(c.sudoers(r))
		for _, p := range c.Probes(r) {
			if strings.Contains(got, sudoersCommand(p.Argv)) != p.Root {
				t.Errorf("%s: probe %q (root %v) in the drop-in: %v", r, p.Name, p.Root, !p.Root)
			}
		}
		for _, a := range [][]string{ActionStage, ActionReboot, ActionRollback} {
			if !strings.Contains(got, sudoersCommand(a)+",") && !strings.Contains(got, sudoersCommand(a)+"\n") {
				t.Errorf("%s: step %v is not in the drop-in:\n%s", r, a, got)
			}
		}
	}
}

func TestSudoersEscapesWhatSudoersReads(t *testing.T) {
	if got := sudoersEscape(`a,b:c=d\e`); got != `a\,b\:c\=d\\e` {
		t.Errorf("escaped %q", got)
	}
}

func TestProbesRunKafkasToolsAgainstTheNodeItself(t *testing.T) {
	s := Default()
	s.Broker.Port, s.Controller.Port = 19092, 19093
	c := plan(t, s)
	names := func(r Role) (out []string) {
		for _, p := range c.Probes(r) {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(Controller); !slices.Equal(got, []string{ProbeBootc, ProbeUnit, ProbeVersion, ProbeQuorum, ProbeQuorumStatus}) {
		t.Errorf("controller probes %v", got)
	}
	if got := names(Broker); !slices.Equal(got, []string{ProbeBootc, ProbeUnit, ProbeVersion, ProbeUnderReplicated, ProbeUnavailable, ProbeAtMinISR, ProbeLiveBrokers, ProbeFeatures}) {
		t.Errorf("broker probes %v", got)
	}
	for _, r := range Roles {
		for _, p := range c.Probes(r) {
			cmd := strings.Join(p.Argv, " ")
			if strings.Contains(cmd, "kafka-") && strings.HasPrefix(cmd, "/usr/bin/podman exec ") && !strings.HasSuffix(cmd, " --version") {
				if !strings.HasPrefix(cmd, "/usr/bin/podman exec "+r.Unit()+" /opt/kafka/bin/") || !strings.Contains(cmd, "localhost:"+map[Role]string{Broker: "19092", Controller: "19093"}[r]) {
					t.Errorf("%s: %s does not run in the node's own Kafka container against its own port", r, cmd)
				}
			}
		}
	}
}

// allowed lists the commands that a sudoers drop-in allows, as sudoers
// reads its Cmnd_Alias lines: continuation lines joined, commands split at
// unescaped commas.
func allowed(t *testing.T, dropIn []byte) []string {
	t.Helper()
	text := strings.ReplaceAll(string(dropIn), "\\\n", "")
	var out []string
	for _, line := range strings.Split(text, "\n") {
		_, cmds, ok := strings.Cut(line, " = ")
		if !strings.HasPrefix(line, "Cmnd_Alias ") || !ok {
			continue
		}
		start := 0
		for i := range len(cmds) {
			if cmds[i] == ',' && (i == 0 || cmds[i-1] != '\\') {
				out = append(out, strings.TrimSpace(cmds[start:i]))
				start = i + 1
			}
		}
		out = append(out, strings.TrimSpace(cmds[start:]))
	}
	return out
}

// TestSudoersAllowsTheTLSStepsInTLSModeOnly: the drop-in that renewal and
// trust rely on, command by command, and nothing of it in plaintext mode.
func TestSudoersAllowsTheTLSStepsInTLSModeOnly(t *testing.T) {
	visudo, err := exec.LookPath("visudo")
	if err != nil {
		t.Skip("skipped: visudo (Debian's sudo) is not installed")
	}
	plain := Default()
	plain.Security = SecurityPlaintext
	for _, s := range []Spec{Default(), plain} {
		c := plan(t, s)
		for _, r := range Roles {
			drop := c.sudoers(r)
			file := filepath.Join(t.TempDir(), "kafka-bootc")
			os.WriteFile(file, drop, 0o440)
			if out, err := exec.Command(visudo, "-c", "-f", file).CombinedOutput(); err != nil {
				t.Fatalf("%s %s: visudo refuses the drop-in: %v\n%s\n%s", s.Security, r, err, out, drop)
			}
			got := allowed(t, drop)
			var tls []string
			for _, cmd := range got {
				if strings.Contains(cmd, "/tls ") || strings.Contains(cmd, " restart ") {
					tls = append(tls, cmd)
				}
			}
			want := []string{
				"/usr/libexec/kafka-bootc/tls install node.pem",
				"/usr/libexec/kafka-bootc/tls install ca.crt",
				"/usr/libexec/kafka-bootc/tls restore node.pem",
				"/usr/libexec/kafka-bootc/tls restore ca.crt",
				"/usr/libexec/kafka-bootc/tls show ca.crt",
				"/usr/bin/systemctl restart kafka-" + string(r) + ".service",
				"/usr/bin/systemctl restart prometheus.service",
			}
			if s.Security == SecurityPlaintext {
				want = nil
			}
			if !slices.Equal(tls, want) {
				t.Errorf("%s %s: the drop-in allows these TLS steps:\n%s\nwant:\n%s", s.Security, r, strings.Join(tls, "\n"), strings.Join(want, "\n"))
			}
			steps := 3 + len(want)
			if r == Broker {
				steps += 2 // finalizing an upgrade, raising kraft.version (4.1 and later)
			}
			if r == Controller && c.Dynamic {
				steps += 2 // the quorum's join and remove
			}
			if len(got) != len(c.rootProbes(r))+steps {
				t.Errorf("%s %s: the drop-in allows %d commands, want %d probes and %d steps:\n%s", s.Security, r, len(got), len(c.rootProbes(r)), steps, drop)
			}
		}
	}
}

func (c *Cluster) rootProbes(r Role) (out []Probe) {
	for _, p := range c.Probes(r) {
		if p.Root {
			out = append(out, p)
		}
	}
	return out
}

// TestFinalizeRaisesMetadataVersionToTheImagesRelease: the version comes
// from the Kafka image's tag, or from the cluster's Kafka version when the
// image is pinned by digest alone; the step runs kafka-features.sh upgrade
// --metadata against the broker itself, with the node's identity, and the
// brokers' drop-in allows exactly it.
func TestFinalizeRaisesMetadataVersionToTheImagesRelease(t *testing.T) {
	s := Default()
	s.KafkaImage = "docker.io/apache/kafka:3.9.1"
	c := plan(t, s)
	if v := c.KafkaVersion.String(); v != "3.9.1" {
		t.Errorf("version %q", v)
	}
	argv := c.FinalizeAction()
	want := "/usr/bin/podman exec kafka-broker /opt/kafka/bin/kafka-features.sh --bootstrap-server localhost:9092 --command-config /etc/kafka-bootc/client.properties upgrade --metadata 3.9"
	if strings.Join(argv, " ") != want {
		t.Errorf("finalize %q, want %q", strings.Join(argv, " "), want)
	}
	if !slices.Contains(allowed(t, c.sudoers(Broker)), sudoersCommand(argv)) || slices.Contains(allowed(t, c.sudoers(Controller)), sudoersCommand(argv)) {
		t.Errorf("the brokers' drop-in alone must allow it")
	}
	s.KafkaImage = "docker.io/apache/kafka@sha256:" + strings.Repeat("ab", 32)
	s.KafkaVersion = "4.4.0"
	c = plan(t, s)
	if got := strings.Join(c.FinalizeAction(), " "); !strings.HasSuffix(got, " upgrade --metadata 4.4") {
		t.Errorf("finalize %q, want the explicit version's release", got)
	}
}

// TestADynamicQuorumsControllersMayChangeTheVoters: the controllers of a
// dynamic quorum allow the quorum script's join exactly, and its remove
// with a node id; visudo takes the drop-in. Brokers, and static
// controllers, allow neither.
func TestADynamicQuorumsControllersMayChangeTheVoters(t *testing.T) {
	visudo, err := exec.LookPath("visudo")
	if err != nil {
		t.Skip("skipped: visudo (Debian's sudo) is not installed")
	}
	s := Default()
	s.Quorum = QuorumDynamic
	c := plan(t, s)
	file := filepath.Join(t.TempDir(), "kafka-bootc")
	if err := os.WriteFile(file, c.sudoers(Controller), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(visudo, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Errorf("visudo refuses the drop-in: %v\n%s\n%s", err, out, c.sudoers(Controller))
	}
	cmds := allowed(t, c.sudoers(Controller))
	join := "/usr/bin/podman exec kafka-controller /bin/bash /opt/kafka-bootc/start/controller-quorum.sh join"
	remove := "/usr/bin/podman exec kafka-controller /bin/bash /opt/kafka-bootc/start/controller-quorum.sh remove [0-9]*"
	if !slices.Contains(cmds, join) || !slices.Contains(cmds, remove) {
		t.Errorf("the controllers' drop-in lacks the quorum's steps: %q", cmds)
	}
	static := Default()
	static.Quorum = QuorumStatic
	for _, other := range [][]byte{c.sudoers(Broker), plan(t, static).sudoers(Controller)} {
		if strings.Contains(string(other), "controller-quorum.sh") {
			t.Errorf("allowed where there is no dynamic quorum:\n%s", other)
		}
	}
}
