package nodes

import (
	"encoding/base64"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

func dynamicCluster(t *testing.T, change func(*Spec)) *Cluster {
	t.Helper()
	s := Default()
	s.Quorum = QuorumDynamic
	if change != nil {
		change(&s)
	}
	return plan(t, s)
}

// TestADynamicQuorumIsRefusedBefore41: Kafka 3.9 and 4.0 could format a
// dynamic quorum, but not move a static one to it; kafka-bootc keeps them
// static, and says so. Left empty, the quorum is dynamic from 4.1 and
// static before. Any other mode is refused, naming the choices.
func TestADynamicQuorumIsRefusedBefore41(t *testing.T) {
	for image, want := range map[string]string{
		"docker.io/apache/kafka:3.9.2": "quorum dynamic: needs Kafka 4.1 or later, and the Kafka image is 3.9.2",
		"docker.io/apache/kafka:4.0.0": "quorum dynamic: needs Kafka 4.1 or later, and the Kafka image is 4.0.0",
		"docker.io/apache/kafka:4.1.2": "",
		"docker.io/apache/kafka:4.4.0": "",
	} {
		s := Default()
		s.Quorum, s.KafkaImage = QuorumDynamic, image
		_, err := Plan(s)
		if (err == nil) != (want == "") || err != nil && !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", image, err, want)
		}
	}
	for image, dynamic := range map[string]bool{"docker.io/apache/kafka:3.9.2": false, "docker.io/apache/kafka:4.0.0": false,
		"docker.io/apache/kafka:4.1.2": true, "docker.io/apache/kafka:4.4.0": true} {
		s := Default()
		s.KafkaImage = image
		if c, err := Plan(s); err != nil || c.Dynamic != dynamic {
			t.Errorf("%s, quorum left empty: dynamic %v, %v", image, c != nil && c.Dynamic, err)
		}
	}
	s := Default()
	s.Quorum = "raft"
	if _, err := Plan(s); err == nil || err.Error() != `quorum "raft": must be dynamic (voters added and removed on a running cluster, Kafka 4.1 or later), static (the controllers are fixed voters), or empty (dynamic from Kafka 4.1, static before)` {
		t.Errorf("quorum raft: %v", err)
	}
}

// TestADynamicQuorumsRendering: every node finds the controllers through
// controller.quorum.bootstrap.servers and none has the static voters; the
// controllers run kafka-bootc's start with the first voter set (each
// controller with its directory id), from a copy that tmpfiles.d makes
// where a container may read it, mounted read-only; the brokers keep the
// image's own start. Read through podman's quadlet converter.
func TestADynamicQuorumsRendering(t *testing.T) {
	c := dynamicCluster(t, nil)
	for _, n := range c.Nodes {
		svc := nodeService(t, c, n)
		env := svc.env()
		if env["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"] != "kafka-controller-1:9093,kafka-controller-2:9093,kafka-controller-3:9093" {
			t.Errorf("%s: bootstrap servers %q", n.Name, env["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"])
		}
		if v, ok := env["KAFKA_CONTROLLER_QUORUM_VOTERS"]; ok {
			t.Errorf("%s: static voters %q in a dynamic quorum", n.Name, v)
		}
		image := slices.Index(svc.podman, c.KafkaImage)
		if image < 0 {
			t.Fatalf("%s: no image in %q", n.Name, svc.podman)
		}
		command := svc.podman[image+1:]
		if want := map[Role]string{Broker: "BROKER://" + n.Hostname + ":9092", Controller: "CONTROLLER://" + n.Hostname + ":9093"}[n.Role]; env["KAFKA_ADVERTISED_LISTENERS"] != want {
			t.Errorf("%s: advertised listeners %q, want %q (a voter is its advertised endpoint)", n.Name, env["KAFKA_ADVERTISED_LISTENERS"], want)
		}
		if n.Role == Broker {
			if len(command) != 0 {
				t.Errorf("%s: a broker runs %q, not the image's start", n.Name, command)
			}
			continue
		}
		want := []string{"/bin/bash", "/opt/kafka-bootc/start/controller-start.sh", "--initial-controllers", c.InitialControllers(),
			"--command-config", "/etc/kafka-bootc/client.properties"}
		if !slices.Equal(command, want) {
			t.Errorf("%s: command\n%q\nwant\n%q", n.Name, command, want)
		}
		mount := controllerStartHostDir() + ":/opt/kafka-bootc/start:ro"
		if !slices.Contains(svc.flag("-v"), mount) {
			t.Errorf("%s: volumes %q lack %s", n.Name, svc.flag("-v"), mount)
		}
	}
	role, err := c.RoleImage(Controller)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(fileOf(t, role, controllerStartSrc)); got != controllerStart {
		t.Errorf("the controller image's start is not the rendered one")
	}
	tmpfiles := string(fileOf(t, role, tmpfilesConf))
	if want := "C " + controllerStartHostDir() + " - - - - " + path.Dir(controllerStartSrc) + "\n"; !strings.Contains(tmpfiles, want) {
		t.Errorf("tmpfiles.d lacks %q:\n%s", want, tmpfiles)
	}
	broker, err := c.RoleImage(Broker)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(fileOf(t, broker, tmpfilesConf)), "kafka-start") {
		t.Errorf("a broker copies the controllers' start")
	}

	// In plaintext mode the start asks the quorum without a client
	// configuration.
	plain := dynamicCluster(t, func(s *Spec) { s.Security = SecurityPlaintext })
	if exec := plain.controllerStartExec(); slices.Contains(exec, "--command-config") {
		t.Errorf("plaintext: %q", exec)
	}
	// A static cluster is as before.
	ss := Default()
	ss.Quorum = QuorumStatic
	static := plan(t, ss)
	for _, n := range static.Nodes {
		env := nodeService(t, static, n).env()
		if env["KAFKA_CONTROLLER_QUORUM_VOTERS"] != "1001@kafka-controller-1:9093,1002@kafka-controller-2:9093,1003@kafka-controller-3:9093" ||
			env["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"] != "" {
			t.Errorf("static %s: %v", n.Name, env)
		}
	}
}

// TestDirectoryIDsAreKafkaUuidsStableAndDistinct: a controller's directory
// id is 22 characters of base64url that decode to 16 bytes (Kafka's Uuid),
// the same at every plan of the same file, different for every controller
// and for another cluster, and never one of Kafka's reserved ids.
func TestDirectoryIDsAreKafkaUuidsStableAndDistinct(t *testing.T) {
	c := dynamicCluster(t, func(s *Spec) { s.Controllers = 5 })
	again := dynamicCluster(t, func(s *Spec) { s.Controllers = 5 })
	other := dynamicCluster(t, func(s *Spec) { s.Controllers = 5; s.Name = "other" })
	seen := map[string]string{}
	var list []string
	for _, n := range c.Nodes {
		if n.Role != Controller {
			continue
		}
		id := c.DirectoryID(n)
		b, err := base64.RawURLEncoding.DecodeString(id)
		if len(id) != 22 || err != nil || len(b) != 16 {
			t.Errorf("%s: %q is not a Kafka Uuid: %v", n.Name, id, err)
		}
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] == 0 {
			t.Errorf("%s: %q is reserved", n.Name, id)
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("%s and %s share %s", prev, n.Name, id)
		}
		seen[id] = n.Name
		if again.DirectoryID(n) != id {
			t.Errorf("%s: another plan of the same file gives another id", n.Name)
		}
		if other.DirectoryID(n) == id {
			t.Errorf("%s: another cluster gives the same id", n.Name)
		}
		list = append(list, n.Name+":9093:"+id)
	}
	got := c.InitialControllers()
	for i, want := range list {
		if !strings.Contains(got, want) || !strings.HasPrefix(strings.Split(got, ",")[i], "100") {
			t.Errorf("initial controllers %q lack %q", got, want)
		}
	}
}

// TestTheControllersStartIsValidBash: bash parses the start and the
// quorum script (the real Kafka runs
// it in internal/realkafka's tests).
func TestTheControllersStartIsValidBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, script := range []string{controllerStart, controllerQuorum} {
		cmd := exec.Command(bash, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, out)
		}
	}
}
