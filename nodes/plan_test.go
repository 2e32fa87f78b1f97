package nodes

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPlanRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Spec)
		want   string
	}{
		{"zero brokers", func(s *Spec) { s.Brokers = 0 }, "brokers: 0: must be from 1 to 99"},
		{"zero controllers", func(s *Spec) { s.Controllers = 0 }, "controllers: 0: must be from 1 to 99"},
		{"a hundred brokers", func(s *Spec) { s.Brokers = 100 }, "brokers: 100: must be from 1 to 99"},
		{"duplicate node ids", func(s *Spec) { s.ControllerIDs = []int{4, 5, 1} },
			"controller ids: kafka-broker-1 and kafka-controller-3 both have id 1: node ids must be unique across brokers and controllers"},
		{"a non-positive node id", func(s *Spec) { s.BrokerIDs = []int{1, 0, 2} },
			"broker ids: kafka-broker-2 has id 0: node ids must be from 1 to 2147483647"},
		{"too few node ids", func(s *Spec) { s.BrokerIDs = []int{1} },
			"broker ids: 1 given for 3 brokers: give one per node or none"},
		{"a domain that is not DNS", func(s *Spec) { s.Domain = "Example_Net" },
			`domain "Example_Net": label "Example_Net" is not a DNS label`},
		{"an empty domain label", func(s *Spec) { s.Domain = "example..com" },
			`domain "example..com": label "" is not a DNS label`},
		{"a cluster name that is not a DNS label", func(s *Spec) { s.Name = "My Cluster" },
			`cluster name "My Cluster": must be lower-case letters, digits and '-'`},
		{"a kafka image without a tag", func(s *Spec) { s.KafkaImage = "docker.io/apache/kafka" },
			`kafka image: "docker.io/apache/kafka": must be pinned by a tag or a digest`},
		{"a kafka image tagged latest", func(s *Spec) { s.KafkaImage = "docker.io/apache/kafka:latest" },
			`kafka image: "docker.io/apache/kafka:latest": must be pinned by a tag other than latest, or by a digest`},
		{"an exporter image without a registry", func(s *Spec) { s.ExporterImage = "prom/node-exporter:v1.8.2" },
			`exporter image: "prom/node-exporter:v1.8.2": must be fully qualified with its registry`},
		{"an image with a systemd specifier", func(s *Spec) { s.KafkaImage = "docker.io/apache/kafka:%i" },
			`kafka image: "docker.io/apache/kafka:%i": must not hold systemd % specifiers`},
		{"a malformed image", func(s *Spec) { s.KafkaImage = "docker.io/Apache/Kafka:3.8.0" },
			`kafka image: "docker.io/Apache/Kafka:3.8.0": not an image reference`},
		{"an empty base image", func(s *Spec) { s.BaseImage = "" }, "base image: an image reference is required"},
		{"a malformed cluster id", func(s *Spec) { s.ClusterID = "not-a-cluster-id" },
			`cluster id "not-a-cluster-id": must be 22 characters of base64url encoding 16 bytes`},
		{"a cluster id starting with '-'", func(s *Spec) { s.ClusterID = "-kU3OEVBNTcwNTJENDM2Qg" },
			`cluster id "-kU3OEVBNTcwNTJENDM2Qg": must not start with '-'`},
		{"the zero cluster id", func(s *Spec) { s.ClusterID = "AAAAAAAAAAAAAAAAAAAAAA" },
			`cluster id "AAAAAAAAAAAAAAAAAAAAAA": is reserved by Kafka`},
		{"a broker port clashing with the exporter", func(s *Spec) { s.Broker.Port = 9100 },
			"broker port 9100: clashes with the exporter port"},
		{"a broker port on sshd's", func(s *Spec) { s.Broker.Port = 22 },
			"broker port 22: clashes with sshd, which listens on 22 on every node"},
		{"a metrics port on sshd's", func(s *Spec) { s.MetricsPort = 22 },
			"metrics port 22: clashes with sshd"},
		{"a controller port out of range", func(s *Spec) { s.Controller.Port = 70000 },
			"controller port 70000: must be from 1 to 65535"},
		{"an exporter port of zero", func(s *Spec) { s.ExporterPort = 0 }, "exporter port 0: must be from 1 to 65535"},
		{"a metrics port out of range", func(s *Spec) { s.MetricsPort = -1 },
			"metrics port -1: must be from 1 to 65535, or 0 to leave the JMX exporter out"},
		{"a metrics port clashing with the exporter", func(s *Spec) { s.MetricsPort = 9100 },
			"metrics port 9100: clashes with the exporter port"},
		{"a jmx exporter url that is not http", func(s *Spec) { s.JMXExporterURL = "file:///tmp/jmx.jar" },
			`jmx exporter url: "file:///tmp/jmx.jar": must be an absolute http or https URL of the file`},
		{"a jmx exporter url with a space", func(s *Spec) { s.JMXExporterURL = "https://mirror.example.com/a b.jar" },
			`jmx exporter url: "https://mirror.example.com/a b.jar": must not hold spaces or control characters`},
		{"a jmx exporter digest that is not sha256", func(s *Spec) { s.JMXExporterSHA256 = "sha256:7d61" },
			`jmx exporter sha256 "sha256:7d61": must be 64 lower-case hex digits, as sha256sum prints`},
		{"a controller port clashing with the metrics port", func(s *Spec) { s.Controller.Port = 7071 },
			"controller port 7071: clashes with the metrics port"},
		{"too little memory", func(s *Spec) { s.Controller.MemoryMiB = 512 },
			"controller memory 512 MiB: must be from 1024 MiB to 4194304 MiB (4 TiB)"},
		{"memory with a digit too many", func(s *Spec) { s.Broker.MemoryMiB = 40960000 },
			"broker memory 40960000 MiB: must be from 1024 MiB to 4194304 MiB (4 TiB)"},
		{"memory that overflows a heap flag", func(s *Spec) { s.Broker.MemoryMiB, s.Broker.HeapMiB = 1<<62, 1<<61 },
			"broker memory 4611686018427387904 MiB: must be from 1024 MiB"},
		{"a cpu count past a VM's", func(s *Spec) { s.Controller.CPUs = 1024 }, "controller cpus 1024: must be from 1 to 256"},
		{"a heap as large as memory", func(s *Spec) { s.Broker.HeapMiB = 4096 },
			"broker heap 4096 MiB: must leave at least 512 MiB of the node's 4096 MiB to the OS"},
		{"zero cpus", func(s *Spec) { s.Broker.CPUs = 0 }, "broker cpus 0: must be from 1 to 256"},
		{"a setting without a value", func(s *Spec) { s.Broker.Settings = []string{"num.partitions"} },
			`broker settings: "num.partitions": must be name=value`},
		{"a setting kafka-bootc owns", func(s *Spec) { s.Controller.Settings = []string{"node.id=7"} },
			"controller settings: node.id is set by kafka-bootc from the node ids"},
		{"a setting given twice", func(s *Spec) { s.Broker.Settings = []string{"num.partitions=3", "num.partitions=6"} },
			"broker settings: num.partitions is given twice"},
		{"a setting that systemd would expand", func(s *Spec) { s.Broker.Settings = []string{"log.retention.hours=${X}"} },
			"broker settings: log.retention.hours: the value may not hold"},
		{"an unknown disk type", func(s *Spec) { s.Disk.Types = []string{"qcow2", "floppy"} },
			`disk type "floppy": unknown; known types are qcow2, raw, ami, vmdk, vhd, gce, anaconda-iso`},
		{"two disk types writing one file", func(s *Spec) { s.Disk.Types = []string{"raw", "ami"} },
			`disk types "raw" and "ami": both write image/disk.raw`},
		{"no disk type", func(s *Spec) { s.Disk.Types = nil }, "disk types: at least one of"},
		{"a root login", func(s *Spec) { s.Disk.User = "root" }, `disk user "root": must be a lower-case login name`},
		{"a private key instead of a public one", func(s *Spec) { s.Disk.SSHKeys = []string{"-----BEGIN OPENSSH PRIVATE KEY-----"} },
			"ssh-key 1: type \"-----BEGIN\": must be one of"},
		{"a plaintext password", func(s *Spec) { s.Disk.PasswordHash = "kafka" },
			"password: must be a crypt(3) hash"},
		{"a negative data size", func(s *Spec) { s.Disk.DataSizeGiB = -1 },
			"data size -1 GiB: must be 0 (no separate filesystem) or up to 16384"},
		{"a data size past a file's", func(s *Spec) { s.Disk.DataSizeGiB = 20000 },
			"data size 20000 GiB: must be 0 (no separate filesystem) or up to 16384"},
		{"a root size of zero", func(s *Spec) { s.Disk.RootSizeGiB = 0 }, "root size 0 GiB: must be from 1 to 16384"},
		{"a root size that overflows bytes", func(s *Spec) { s.Disk.RootSizeGiB = 1 << 40 }, "root size 1099511627776 GiB: must be from 1 to 16384"},
		{"root and data together past a file's", func(s *Spec) { s.Disk.RootSizeGiB, s.Disk.DataSizeGiB = 8192, 10000 },
			"root size 8192 GiB and data size 10000 GiB: together must be at most 16384 GiB"},
	}
	for _, tc := range tests {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			s := exampleSpec()
			tc.change(&s)
			c, err := Plan(s)
			if err == nil {
				t.Fatalf("Plan accepted it: %+v", c)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %q\nwant it to start with\n  %q", err, tc.want)
			}
		})
	}
}

func TestPlanNamesNodesAndIDsLikeTheReference(t *testing.T) {
	c := plan(t, exampleSpec())
	var got []string
	for _, n := range c.Nodes {
		got = append(got, fmt.Sprintf("%s=%d", n.Name, n.ID))
	}
	want := []string{
		"kafka-broker-1=1", "kafka-broker-2=2", "kafka-broker-3=3",
		"kafka-controller-1=1001", "kafka-controller-2=1002", "kafka-controller-3=1003",
	}
	if !slices.Equal(got, want) {
		t.Errorf("nodes %q, want %q", got, want)
	}
	s := exampleSpec()
	s.Domain = "kafka.example.com"
	if n := plan(t, s).Nodes[0]; n.Hostname != "kafka-broker-1.kafka.example.com" {
		t.Errorf("hostname with a domain: %q", n.Hostname)
	}
}

func TestTreeIsWholeOrAbsent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	bad := []Entry{{Path: "a/ok", Content: []byte("x"), Mode: 0o644}, {Path: "../escape", Content: nil, Mode: 0o644}}
	if err := WriteTree(dir, bad); err == nil {
		t.Fatal("WriteTree accepted a path outside the tree")
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("a failed WriteTree left %s behind", dir)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".out.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("a failed WriteTree left %q behind", leftovers)
	}
}

var update = flag.Bool("update", false, "rewrite tests/golden from the renderer")

// golden is the rendered tree of the default cluster with the example key,
// and golden38 the same cluster on Kafka 3.8.0, the oldest release that
// kafka-bootc renders.
const (
	golden   = "../tests/golden/default"
	golden38 = "../tests/golden/kafka-3.8.0"
)

// TestDefaultClusterMatchesGolden compares the rendering with the reviewed
// trees in tests/golden. After an intended change, regenerate them with:
// go test ./nodes -run Golden -update, and review the diff.
func TestDefaultClusterMatchesGolden(t *testing.T) {
	matchesGolden(t, golden, exampleSpec())
}

// TestKafka38ClusterMatchesGolden: the default cluster on Kafka 3.8.0,
// which stays supported: the golden tree differs from the default one in
// the image, the release that finalizing raises metadata.version to, and
// the settings that only later releases have.
func TestKafka38ClusterMatchesGolden(t *testing.T) {
	s := exampleSpec()
	s.KafkaImage = "docker.io/apache/kafka:3.8.0"
	matchesGolden(t, golden38, s)
}

// TestTheGoldenTreeFromAClusterFile: the same tree from the cluster file
// that holds only the example key, and from init's whole default file with
// it.
func TestTheGoldenTreeFromAClusterFile(t *testing.T) {
	for name, text := range map[string]string{
		"a file with the key alone": "version: 1\ndisk:\n  sshKeys: [\"" + exampleKey + "\"]\n",
		"init's file with the key":  strings.Replace(string(DefaultFile), "  sshKeys: []\n", "  sshKeys: [\""+exampleKey+"\"]\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			s, _, err := ReadFile("kafka-cluster.yaml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			matchesGolden(t, golden, s)
		})
	}
}

// matchesGolden compares the rendering of s with the reviewed tree.
func matchesGolden(t *testing.T, golden string, s Spec) {
	t.Helper()
	tree, err := plan(t, s).Tree()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.RemoveAll(golden); err != nil {
			t.Fatal(err)
		}
		if err := WriteTree(golden, tree); err != nil {
			t.Fatal(err)
		}
	}
	want, err := ReadTree(golden)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	index := map[string]Entry{}
	for _, e := range want {
		index[e.Path] = e
	}
	for _, e := range tree {
		g, ok := index[e.Path]
		delete(index, e.Path)
		switch {
		case !ok:
			t.Errorf("%s: rendered but not in %s", e.Path, golden)
		case e.Target != g.Target:
			t.Errorf("%s: links to %q, golden to %q", e.Path, e.Target, g.Target)
		case !bytes.Equal(e.Content, g.Content):
			t.Errorf("%s differs from %s:\n--- rendered\n%s\n--- golden\n%s", e.Path, golden, e.Content, g.Content)
		case e.Target == "" && e.Mode.Perm()&0o111 != g.Mode.Perm()&0o111:
			t.Errorf("%s: mode %v, golden %v", e.Path, e.Mode, g.Mode)
		}
	}
	for p := range index {
		t.Errorf("%s: in %s but no longer rendered", p, golden)
	}
}

func TestRenderingIsDeterministic(t *testing.T) {
	a, err := plan(t, exampleSpec()).Tree()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		b, err := plan(t, exampleSpec()).Tree()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(a, b, func(x, y Entry) bool {
			return x.Path == y.Path && x.Target == y.Target && x.Mode == y.Mode && bytes.Equal(x.Content, y.Content)
		}) {
			t.Fatal("two renderings of one cluster differ")
		}
	}
}

// FuzzPlan feeds arbitrary descriptions to the model: it must answer with
// a cluster or an error, never panic, and a cluster it accepts must render
// as the description asks (see checkRendering).
func FuzzPlan(f *testing.F) {
	f.Add("kafka", "", "", 3, 3, "docker.io/apache/kafka:3.8.0", 4096, 0, 9092, 9093, "num.partitions=6", 1, "qcow2")
	f.Add("x", "MkU3OEVBNTcwNTJENDM2Qg", "a.b", 1, 1, "localhost:5000/k@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1024, 512, 1, 65535, "a=b", 7, "raw")
	f.Fuzz(func(t *testing.T, name, id, domain string, brokers, controllers int, image string, memory, heap, bport, cport int, setting string, firstID int, disk string) {
		s := exampleSpec()
		s.Name, s.ClusterID, s.Domain = name, id, domain
		s.Brokers, s.Controllers = brokers%200, controllers%200
		s.KafkaImage = image
		s.Broker.MemoryMiB, s.Broker.HeapMiB, s.Broker.Port = memory, heap, bport
		s.Controller.Port = cport
		s.Broker.Settings = []string{setting}
		if firstID != 1 && s.Controllers > 0 && s.Controllers < 200 {
			s.ControllerIDs = make([]int, s.Controllers)
			for i := range s.ControllerIDs {
				s.ControllerIDs[i] = firstID + i
			}
		}
		s.Disk.Types = []string{disk}
		c, err := Plan(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		entries, err := c.Tree()
		if err != nil {
			t.Fatalf("Plan accepted %+v but Tree failed: %v", s, err)
		}
		checkRendering(t, s, c, entries)
	})
}

// checkRendering holds a rendered tree against the description it came
// from: every node it asks for, and no other, each with its hostname and
// id (the given ids, when there are any); each role's port published; each
// role's setting in its Kafka unit's environment.
func checkRendering(t *testing.T, s Spec, c *Cluster, entries []Entry) {
	t.Helper()
	files := map[string]string{}
	tops := map[string]bool{}
	for _, e := range entries {
		files[e.Path] = string(e.Content)
		top, _, _ := strings.Cut(e.Path, "/")
		tops[top] = true
	}
	counts := map[Role]int{Broker: s.Brokers, Controller: s.Controllers}
	given := map[Role][]int{Broker: s.BrokerIDs, Controller: s.ControllerIDs}
	specs := map[Role]RoleSpec{Broker: s.Broker, Controller: s.Controller}
	for _, r := range Roles {
		unit := r.Unit()
		for i := 1; i <= counts[r]; i++ {
			name := fmt.Sprintf("%s-%d", unit, i)
			host := name
			if s.Domain != "" {
				host += "." + s.Domain
			}
			if got := files[name+"/etc/hostname"]; strings.TrimSpace(got) != host {
				t.Fatalf("%s: hostname %q, want %q", name, got, host)
			}
			id := r.FirstID() + i - 1
			if given[r] != nil {
				id = given[r][i-1]
			}
			drop := files[name+"/usr/share/containers/systemd/"+unit+".container.d/"+dropIn]
			if !strings.Contains(drop, fmt.Sprintf("Environment=KAFKA_NODE_ID=%d\n", id)) {
				t.Fatalf("%s: its drop-in lacks node id %d:\n%s", name, id, drop)
			}
		}
		if tops[fmt.Sprintf("%s-%d", unit, counts[r]+1)] {
			t.Fatalf("a %s beyond the %d asked for is rendered", r, counts[r])
		}
		quadlet := files[unit+"/usr/share/containers/systemd/"+unit+".container"]
		if port := c.Roles[r].Port; !strings.Contains(quadlet, fmt.Sprintf("PublishPort=%d:%d\n", port, port)) || port != specs[r].Port && specs[r].Port != 0 {
			t.Fatalf("%s: port %d (asked %d) not published:\n%s", r, port, specs[r].Port, quadlet)
		}
		for _, kv := range specs[r].Settings {
			name, value, _ := strings.Cut(kv, "=")
			if !strings.Contains(quadlet, EnvName(strings.TrimSpace(name))+"="+value) {
				t.Fatalf("%s: setting %q is not in its Kafka unit", r, kv)
			}
		}
	}
	if len(c.Nodes) != s.Brokers+s.Controllers {
		t.Fatalf("%d nodes planned for %d brokers and %d controllers", len(c.Nodes), s.Brokers, s.Controllers)
	}
}

func TestRegistryAndRefs(t *testing.T) {
	tests := []struct{ registry, tag, ref, host string }{
		{"quay.io/me", "latest", "quay.io/me/kafka-broker-1:latest", "quay.io"},
		{"me", "v1", "quay.io/me/kafka-broker-1:v1", "quay.io"},
		{"localhost:5000/team/", "2026.11", "localhost:5000/team/kafka-broker-1:2026.11", "localhost:5000"},
		{"", "latest", "", ""},
	}
	for _, tc := range tests {
		s := exampleSpec()
		s.Registry, s.Tag = tc.registry, tc.tag
		c := plan(t, s)
		if got := c.Ref(c.Nodes[0]); got != tc.ref {
			t.Errorf("registry %q tag %q: ref %q, want %q", tc.registry, tc.tag, got, tc.ref)
		}
		if got := c.Host(); got != tc.host {
			t.Errorf("registry %q: host %q, want %q", tc.registry, got, tc.host)
		}
	}
	for _, bad := range []struct{ registry, tag, want string }{
		{"quay.io/Me", "latest", `registry "quay.io/Me": must be a registry and namespace`},
		{"quay.io/me", "", `tag "": must be 1 to 128`},
		{"quay.io/me", "-x", `tag "-x": must be 1 to 128`},
	} {
		s := exampleSpec()
		s.Registry, s.Tag = bad.registry, bad.tag
		if _, err := Plan(s); err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("registry %q tag %q: error %v, want %q", bad.registry, bad.tag, err, bad.want)
		}
	}
}

func TestARegistryServiceServesOnlyImagesOnTheRegistrysHost(t *testing.T) {
	s := exampleSpec()
	s.Registry = "localhost:5000/e2e"
	c := plan(t, s)
	for ref, want := range map[string]bool{
		"localhost:5000/e2e/base:moving":                              true,
		"localhost:5000/other/base@sha256:" + strings.Repeat("a", 64): true,
		"localhost/e2e/base:moving":                                   false,
		"quay.io/centos-bootc/centos-bootc:stream9":                   false,
		"centos-bootc:stream9":                                        false,
		"not a reference":                                             false,
	} {
		if got := c.OnRegistryHost(ref); got != want {
			t.Errorf("%s: on localhost:5000 = %v, want %v", ref, got, want)
		}
	}
	s.Registry = ""
	if plan(t, s).OnRegistryHost("localhost:5000/e2e/base:moving") {
		t.Error("a cluster without a registry claims a registry host")
	}
}

func TestDiskImagesPutEveryImageInBibStorage(t *testing.T) {
	const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	s := exampleSpec()
	s.Registry = "quay.io/me"
	s.ExporterImage = "docker.io/prom/node-exporter" + digest
	c := plan(t, s)
	n := c.Nodes[0]

	got, err := c.DiskImages(n, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []StoredImage{
		{Ref: "quay.io/me/kafka-broker-1:latest", Node: true},
		{Ref: "docker.io/apache/kafka:4.4.0"},
		{Ref: s.ExporterImage, Pull: s.ExporterImage},
	}
	if !slices.Equal(got, want) {
		t.Errorf("built node:\n got %+v\nwant %+v", got, want)
	}

	published := "quay.io/me/kafka-broker-1" + digest
	got, err = c.DiskImages(n, published)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != (StoredImage{Ref: "quay.io/me/kafka-broker-1:latest", Pull: published, Node: true}) {
		t.Errorf("published node: %+v; want it pulled by digest and stored under the tag nodes upgrade from", got[0])
	}
	for _, bad := range []string{"quay.io/me/kafka-broker-2" + digest, "quay.io/me/kafka-broker-1:latest", "kafka-broker-1"} {
		if _, err := c.DiskImages(n, bad); err == nil {
			t.Errorf("published %q accepted for %s", bad, n.Name)
		}
	}
	s.Registry = ""
	if _, err := plan(t, s).DiskImages(n, ""); !errors.Is(err, ErrNoRegistry) {
		t.Error("a disk without a registry would install a localhost reference")
	}
}

func TestVMsAreSizedPerRole(t *testing.T) {
	c := plan(t, exampleSpec())
	vms := c.VMs(c.Nodes)
	if vms[0].MemoryMiB != 4096 || vms[5].MemoryMiB != 2048 || vms[0].CPUs != 2 || vms[5].Name != "kafka-controller-3" {
		t.Errorf("VMs %+v", vms)
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if _, err := ParseRole("combined"); err == nil || err.Error() != `role "combined": must be broker or controller` {
		t.Errorf("ParseRole(combined): %v", err)
	}
}

// TestGrowingNeverRenumbersANode: adding a broker, or a controller, leaves
// the node id of every existing node as it was; adding a broker to three
// leaves every file of every existing image as it was too, so nothing
// running needs a new image.
func TestGrowingNeverRenumbersANode(t *testing.T) {
	ids := func(c *Cluster) map[string]int {
		out := map[string]int{}
		for _, n := range c.Nodes {
			out[n.Name] = n.ID
		}
		return out
	}
	for _, grow := range []struct {
		name string
		more func(*Spec)
	}{
		{"a fourth broker", func(s *Spec) { s.Brokers++ }},
		{"a fourth controller", func(s *Spec) { s.Controllers++ }},
		{"a fifty-first broker", func(s *Spec) { s.Brokers = 51 }},
	} {
		t.Run(grow.name, func(t *testing.T) {
			s := Default()
			before := ids(plan(t, s))
			grow.more(&s)
			after := ids(plan(t, s))
			for name, id := range before {
				if after[name] != id {
					t.Errorf("%s: node id %d became %d", name, id, after[name])
				}
			}
		})
	}

	s := Default()
	tree := func(s Spec) map[string]Entry {
		entries, err := plan(t, s).Tree()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Entry{}
		for _, e := range entries {
			out[e.Path] = e
		}
		return out
	}
	before := tree(s)
	s.Brokers = 4
	after := tree(s)
	for path, e := range before {
		a, ok := after[path]
		if !ok || !bytes.Equal(a.Content, e.Content) || a.Target != e.Target || a.Mode != e.Mode {
			t.Errorf("%s changed when a fourth broker was added", path)
		}
	}
	if _, ok := after["kafka-broker-4/Containerfile"]; !ok {
		t.Error("no image for the fourth broker")
	}
}

func TestPublishWavesUploadEachSharedLayerOnce(t *testing.T) {
	names := func(waves [][]Node) [][]string {
		var out [][]string
		for _, w := range waves {
			var ns []string
			for _, n := range w {
				ns = append(ns, n.Name)
			}
			out = append(out, ns)
		}
		return out
	}
	for _, tc := range []struct {
		brokers, controllers int
		want                 [][]string
	}{
		{3, 3, [][]string{{"kafka-broker-1"}, {"kafka-controller-1"},
			{"kafka-broker-2", "kafka-broker-3", "kafka-controller-2", "kafka-controller-3"}}},
		{1, 1, [][]string{{"kafka-broker-1"}, {"kafka-controller-1"}}},
		{2, 1, [][]string{{"kafka-broker-1"}, {"kafka-controller-1"}, {"kafka-broker-2"}}},
	} {
		s := Default()
		s.Brokers, s.Controllers = tc.brokers, tc.controllers
		if got := names(plan(t, s).PublishWaves()); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d+%d: waves %v, want %v", tc.brokers, tc.controllers, got, tc.want)
		}
	}
	// 30+3: every node is published exactly once, and each wave after the
	// first two starts only when both roles' layers are in the registry.
	s := Default()
	s.Brokers = 30
	c := plan(t, s)
	waves := c.PublishWaves()
	count := map[string]int{}
	for _, w := range waves {
		for _, n := range w {
			count[n.Name]++
		}
	}
	if len(count) != 33 || len(waves) != 3 || len(waves[2]) != 31 {
		t.Errorf("30+3: %d nodes in %d waves (%d in the last)", len(count), len(waves), len(waves[len(waves)-1]))
	}
	for name, n := range count {
		if n != 1 {
			t.Errorf("%s is published %d times", name, n)
		}
	}
}
