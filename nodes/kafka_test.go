package nodes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containers/podman/v5/pkg/systemd/parser"
)

// envProperties maps a container environment to server.properties the way the
// apache/kafka image does (KafkaDockerWrapper): KAFKA_FOO_BAR is foo.bar,
// "__" is "_" and "___" is "-"; heap, JVM, JMX and log4j variables are not
// properties.
func envProperties(env map[string]string) map[string]string {
	props := map[string]string{}
	for k, v := range env {
		name, ok := strings.CutPrefix(k, "KAFKA_")
		if !ok || name == "HEAP_OPTS" || name == "OPTS" || strings.HasPrefix(name, "JMX_") || strings.HasPrefix(name, "LOG4J_") {
			continue
		}
		name = strings.ToLower(name)
		name = strings.ReplaceAll(name, "___", "-")
		name = strings.ReplaceAll(name, "__", "\x00")
		name = strings.ReplaceAll(name, "_", ".")
		name = strings.ReplaceAll(name, "\x00", "_")
		props[name] = v
	}
	return props
}

var heapOpts = regexp.MustCompile(`^-Xms(\d+)m -Xmx(\d+)m$`)

// TestEveryNodeFormsOneCluster reads each node's Kafka configuration as the
// image would build it and checks that together they form one KRaft
// cluster.
func TestEveryNodeFormsOneCluster(t *testing.T) {
	specs := map[string]Spec{"default": exampleSpec()}
	small := exampleSpec()
	small.Brokers, small.Controllers, small.Domain = 1, 1, "kafka.example.com"
	small.Broker.Settings = []string{"num.partitions=6", "auto.create.topics.enable=false"}
	specs["one broker, one controller, a domain"] = small
	ids := exampleSpec()
	ids.BrokerIDs, ids.ControllerIDs = []int{10, 11, 12}, []int{1, 2, 3}
	specs["given node ids"] = ids
	lab := exampleSpec()
	lab.Security = SecurityPlaintext
	specs["plaintext"] = lab
	old := exampleSpec()
	old.KafkaImage = "docker.io/apache/kafka:3.8.0"
	specs["kafka 3.8.0"] = old
	smallOld := small
	smallOld.KafkaImage = old.KafkaImage
	specs["one broker on kafka 3.8.0"] = smallOld

	for name, s := range specs {
		t.Run(name, func(t *testing.T) {
			c := plan(t, s)
			clusterIDs := map[string]bool{}
			nodeIDs := map[string]string{}
			var voters []string
			for _, n := range c.Nodes {
				svc := nodeService(t, c, n)
				env := svc.env()
				props := serverProperties(t, c, n, svc)
				clusterIDs[env["CLUSTER_ID"]] = true
				if err := CheckClusterID(env["CLUSTER_ID"]); err != nil {
					t.Errorf("%s: %v", n.Name, err)
				}
				if other, dup := nodeIDs[props["node.id"]]; dup {
					t.Errorf("%s and %s share node.id %s", other, n.Name, props["node.id"])
				}
				nodeIDs[props["node.id"]] = n.Name
				if props["node.id"] != strconv.Itoa(n.ID) {
					t.Errorf("%s: node.id %q, want %d", n.Name, props["node.id"], n.ID)
				}
				if props["process.roles"] != string(n.Role) {
					t.Errorf("%s: process.roles %q", n.Name, props["process.roles"])
				}
				if c.Dynamic {
					voters = append(voters, props["controller.quorum.bootstrap.servers"])
				} else {
					voters = append(voters, props["controller.quorum.voters"])
				}
				if props["log.dirs"] != LogDir || !slices.Contains(svc.flag("-v"), hostLogDir+":"+LogDir) {
					t.Errorf("%s: log.dirs %q is not the mounted host directory", n.Name, props["log.dirs"])
				}
				m := heapOpts.FindStringSubmatch(env["KAFKA_HEAP_OPTS"])
				if m == nil || m[1] != m[2] {
					t.Errorf("%s: KAFKA_HEAP_OPTS %q", n.Name, env["KAFKA_HEAP_OPTS"])
				} else if heap, _ := strconv.Atoi(m[1]); heap >= c.Roles[n.Role].MemoryMiB {
					t.Errorf("%s: heap %d MiB does not fit in %d MiB", n.Name, heap, c.Roles[n.Role].MemoryMiB)
				}
				port := c.Roles[n.Role].Port
				switch n.Role {
				case Controller:
					// A static quorum's controller runs the image's start,
					// whose configure script exits when it is set; a
					// dynamic one's runs kafka-bootc's and must advertise.
					if v, set := props["advertised.listeners"]; c.Dynamic != set || set && v != fmt.Sprintf("CONTROLLER://%s:%d", n.Hostname, port) {
						t.Errorf("%s: advertised.listeners %q in a quorum dynamic %v", n.Name, v, c.Dynamic)
					}
					if props["listeners"] != fmt.Sprintf("CONTROLLER://:%d", port) {
						t.Errorf("%s: listeners %q", n.Name, props["listeners"])
					}
				case Broker:
					want := fmt.Sprintf("%s://%s:%d", props["inter.broker.listener.name"], n.Hostname, port)
					if props["advertised.listeners"] != want {
						t.Errorf("%s: advertised.listeners %q, want %q", n.Name, props["advertised.listeners"], want)
					}
					if props["listeners"] != fmt.Sprintf("%s://:%d", props["inter.broker.listener.name"], port) {
						t.Errorf("%s: listeners %q do not serve the inter-broker listener %q", n.Name, props["listeners"], props["inter.broker.listener.name"])
					}
					if strings.Contains(env["KAFKA_ADVERTISED_LISTENERS"], "SSL://") {
						t.Errorf("%s: advertised listeners %q hold SSL://: the image's configure script would take its own JKS files", n.Name, env["KAFKA_ADVERTISED_LISTENERS"])
					}
					rf, _ := strconv.Atoi(props["offsets.topic.replication.factor"])
					if rf < 1 || rf > c.Count(Broker) {
						t.Errorf("%s: offsets.topic.replication.factor %d with %d brokers", n.Name, rf, c.Count(Broker))
					}
					// Share groups' state topic (Kafka 4.2's upgrade notes):
					// replicated as the offsets are, and not set for a
					// release that does not have it.
					share, set := props["share.coordinator.state.topic.replication.factor"]
					isr := props["share.coordinator.state.topic.min.isr"]
					if c.KafkaVersion.AtLeast(4, 2) {
						if share != props["offsets.topic.replication.factor"] || isr != props["transaction.state.log.min.isr"] {
							t.Errorf("%s: share state topic replication %q, min.isr %q, want the offsets topic's %q and %q", n.Name, share, isr, props["offsets.topic.replication.factor"], props["transaction.state.log.min.isr"])
						}
					} else if set {
						t.Errorf("%s: Kafka %s is given share.coordinator settings it does not have", n.Name, c.KafkaVersion)
					}
					for _, kv := range s.Broker.Settings {
						k, v, _ := strings.Cut(kv, "=")
						if props[k] != v {
							t.Errorf("%s: setting %s = %q, want %q", n.Name, k, props[k], v)
						}
					}
				}
				checkJMXAgent(t, c, n, svc, env)
				if !strings.Contains(props["controller.listener.names"], "CONTROLLER") {
					t.Errorf("%s: controller.listener.names %q", n.Name, props["controller.listener.names"])
				}
			}
			if len(clusterIDs) != 1 {
				t.Errorf("nodes disagree on CLUSTER_ID: %v", clusterIDs)
			}
			// Every node names the same controllers: in a static quorum
			// each voter by its own node.id, host name and port; in a
			// dynamic one (Kafka 4.1 and later) each by host name and port.
			if c.Dynamic != c.KafkaVersion.AtLeast(4, 1) {
				t.Errorf("Kafka %s: quorum dynamic %v", c.KafkaVersion, c.Dynamic)
			}
			var want []string
			for _, n := range c.Nodes {
				if n.Role == Controller {
					if c.Dynamic {
						want = append(want, fmt.Sprintf("%s:%d", n.Hostname, c.Roles[Controller].Port))
					} else {
						want = append(want, fmt.Sprintf("%d@%s:%d", n.ID, n.Hostname, c.Roles[Controller].Port))
					}
				}
			}
			for i, v := range voters {
				if v != strings.Join(want, ",") {
					t.Errorf("%s: the controllers %q, want %q", c.Nodes[i].Name, v, strings.Join(want, ","))
				}
			}
		})
	}
}

// TestBoundImagesFollowBootcRules checks what bootc reads: every entry of
// bound-images.d is a symlink to a quadlet of the same image whose Image= is
// the pinned reference, and no drop-in sets Image=.
func TestBoundImagesFollowBootcRules(t *testing.T) {
	c := plan(t, exampleSpec())
	imgs, err := c.Images()
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string][]string{}
	for _, img := range imgs {
		for _, l := range img.Symlinks {
			if path.Dir(l.Path) != boundImagesDir {
				continue
			}
			if path.Ext(l.Path) != ".container" || !path.IsAbs(l.Target) {
				t.Errorf("%s: %s -> %s: want an absolute link to a .container", img.Name, l.Path, l.Target)
			}
			u := parser.NewUnitFile()
			if err := u.Parse(string(fileOf(t, img, l.Target))); err != nil {
				t.Fatal(err)
			}
			image, _ := u.Lookup("Container", "Image")
			if err := CheckBoundImage(image); err != nil {
				t.Errorf("%s: %s: %v", img.Name, l.Target, err)
			}
			bound[img.Name] = append(bound[img.Name], image)
		}
		for _, f := range img.Files {
			if !strings.HasSuffix(path.Dir(f.Path), ".container.d") {
				continue
			}
			u := parser.NewUnitFile()
			if err := u.Parse(string(f.Content)); err != nil {
				t.Fatal(err)
			}
			if u.HasKey("Container", "Image") {
				t.Errorf("%s: drop-in %s sets Image=; bootc would not see it", img.Name, f.Path)
			}
		}
	}
	for _, r := range Roles {
		got := bound[r.Unit()]
		slices.Sort(got)
		if want := []string{c.KafkaImage, c.ExporterImage}; !slices.Equal(got, want) {
			t.Errorf("%s binds %q, want %q", r.Unit(), got, want)
		}
	}
}

func TestClusterIDIsStableValidAndPerCluster(t *testing.T) {
	// A changed id makes nodes with data refuse to start: this value must
	// never change for the default cluster name.
	if got := DeriveClusterID("kafka"); got != "UI5Z4HeKr8swcA11bEQvwQ" {
		t.Errorf("DeriveClusterID(kafka) = %q; it changed, which breaks every existing cluster", got)
	}
	seen := map[string]string{}
	for i := range 2000 {
		name := fmt.Sprintf("cluster-%d", i)
		id := DeriveClusterID(name)
		if err := CheckClusterID(id); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if other, dup := seen[id]; dup {
			t.Fatalf("%s and %s share id %s", other, name, id)
		}
		seen[id] = name
	}
	s := exampleSpec()
	s.ClusterID = "MkU3OEVBNTcwNTJENDM2Qg"
	if c := plan(t, s); c.ID != s.ClusterID {
		t.Errorf("given cluster id %q, planned %q", s.ClusterID, c.ID)
	}
}

func TestHeapFollowsMemory(t *testing.T) {
	for _, tc := range []struct{ memory, heap int }{
		{2048, 1024}, {4096, 2048}, {16384, 6144}, {65536, 6144},
	} {
		if got := DeriveHeapMiB(tc.memory); got != tc.heap {
			t.Errorf("DeriveHeapMiB(%d) = %d, want %d", tc.memory, got, tc.heap)
		}
	}
	s := exampleSpec()
	s.Broker.MemoryMiB, s.Broker.HeapMiB = 8192, 3000
	if got := plan(t, s).Roles[Broker].HeapMiB; got != 3000 {
		t.Errorf("given heap 3000, planned %d", got)
	}
}

// checkJMXAgent: the server's JVM (and only it: not through KAFKA_OPTS,
// which every Kafka tool in the container would also load) starts the JMX
// exporter from a file that a read-only volume provides, serving on the
// published metrics port.
func checkJMXAgent(t *testing.T, c *Cluster, n Node, svc service, env map[string]string) {
	t.Helper()
	if _, set := env["KAFKA_OPTS"]; set {
		t.Errorf("%s: KAFKA_OPTS is set; the agent would start in every Kafka tool too", n.Name)
	}
	m := regexp.MustCompile(`^-name kafkaServer -loggc -javaagent:(\S+)=(\d+):(\S+)$`).FindStringSubmatch(env["EXTRA_ARGS"])
	if m == nil {
		t.Errorf("%s: EXTRA_ARGS %q does not start the JMX exporter", n.Name, env["EXTRA_ARGS"])
		return
	}
	if m[2] != strconv.Itoa(c.MetricsPort) || !slices.Contains(svc.flag("--publish"), m[2]+":"+m[2]) {
		t.Errorf("%s: the agent serves on %s, published %q", n.Name, m[2], svc.flag("--publish"))
	}
	img, err := c.RoleImage(n.Role)
	if err != nil {
		t.Fatal(err)
	}
	for _, inContainer := range []string{m[1], m[3]} {
		found := false
		for _, v := range svc.flag("-v") {
			parts := strings.Split(v, ":")
			if len(parts) == 3 && parts[2] == "ro" && path.Dir(inContainer) == parts[1] {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %s is on no read-only volume: %q", n.Name, inContainer, svc.flag("-v"))
		}
		inImage := path.Join(path.Dir(jmxConfigPath), path.Base(inContainer))
		if !slices.ContainsFunc(img.Files, func(f File) bool { return f.Path == inImage }) &&
			!slices.ContainsFunc(img.Downloads, func(d Download) bool { return d.Path == inImage }) {
			t.Errorf("%s: %s is not in the image at %s", n.Name, inContainer, inImage)
		}
	}
	if !strings.Contains(string(fileOf(t, img, tmpfilesConf)), "C "+c.jmxHostDir()+" - - - - "+path.Dir(jmxConfigPath)+"\n") {
		t.Errorf("%s: tmpfiles.d does not copy the exporter to %s", n.Name, c.jmxHostDir())
	}
}

func TestWithoutMetricsPortThereIsNoJMXExporter(t *testing.T) {
	s := exampleSpec()
	s.MetricsPort = 0
	c := plan(t, s)
	img, err := c.RoleImage(Broker)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Downloads) != 0 || strings.Contains(string(fileOf(t, img, tmpfilesConf)), "jmx") {
		t.Errorf("metrics off, yet the image has %+v", img.Downloads)
	}
	env := nodeService(t, c, c.Nodes[0]).env()
	if _, set := env["EXTRA_ARGS"]; set {
		t.Errorf("metrics off, yet EXTRA_ARGS = %q", env["EXTRA_ARGS"])
	}
	if got := c.Ports(Broker); !slices.Equal(got, []int{9092, 9100}) {
		t.Errorf("ports %v", got)
	}
}

// TestDownloadChecksItsDigest runs the Containerfile's download command
// with a stand-in curl: the right content passes, any other fails.
func TestDownloadChecksItsDigest(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	fakeCurl := "#!/bin/sh\nwhile [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\nmkdir -p \"$(dirname \"$out\")\"\nprintf %s \"$CONTENT\" > \"$out\"\n"
	os.WriteFile(filepath.Join(bin, "curl"), []byte(fakeCurl), 0o755)
	content := "agent"
	sum := sha256.Sum256([]byte(content))
	d := Download{URL: "https://example.com/a.jar", SHA256: hex.EncodeToString(sum[:]), Path: filepath.Join(dir, "out/a.jar"), Mode: 0o644}
	run := func(content string) error {
		cmd := exec.Command("sh", "-c", d.Shell())
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "CONTENT="+content)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := run(content); err != nil {
		t.Errorf("the right content failed: %v", err)
	}
	if err := run("tampered"); err == nil {
		t.Error("content with another digest passed")
	}
}

// TestDownloadCheckRefusesAGivenFileWithAnotherDigest runs the check that
// guards a jar given as a file instead of downloaded.
func TestDownloadCheckRefusesAGivenFileWithAnotherDigest(t *testing.T) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("agent"))
	d := Download{URL: "https://example.com/a.jar", SHA256: hex.EncodeToString(sum[:]), Path: filepath.Join(dir, "a.jar"), Mode: 0o644}
	for content, ok := range map[string]bool{"agent": true, "tampered": false} {
		os.WriteFile(d.Path, []byte(content), 0o644)
		out, err := exec.Command(d.Check()[0], d.Check()[1:]...).CombinedOutput()
		if (err == nil) != ok {
			t.Errorf("content %q: check passed = %v, want %v (%s)", content, err == nil, ok, out)
		}
	}
}

// TestAMirrorAndAnotherJarReachTheImage: a mirror URL and digest replace
// Maven Central's in the download, and a new digest gives the copy on the
// host a new directory, so an upgrade never keeps the old jar.
func TestAMirrorAndAnotherJarReachTheImage(t *testing.T) {
	s := exampleSpec()
	before := plan(t, s).jmxHostDir()
	s.JMXExporterURL = "https://mirror.example.com/maven2/jmx.jar"
	s.JMXExporterSHA256 = strings.Repeat("ab", 32)
	c := plan(t, s)
	img, err := c.RoleImage(Broker)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Downloads) != 1 || img.Downloads[0].URL != s.JMXExporterURL || img.Downloads[0].SHA256 != s.JMXExporterSHA256 {
		t.Fatalf("downloads %+v", img.Downloads)
	}
	if c.jmxHostDir() == before {
		t.Errorf("another jar is copied to the same host directory %s", before)
	}
	if !strings.Contains(string(fileOf(t, img, tmpfilesConf)), c.jmxHostDir()) {
		t.Errorf("tmpfiles.d does not copy to %s", c.jmxHostDir())
	}
}
