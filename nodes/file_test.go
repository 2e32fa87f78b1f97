package nodes

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"dagger/kafka-bootc/bib"
)

func readFile(t *testing.T, text string) (Spec, string, error) {
	t.Helper()
	return ReadFile("kafka-cluster.yaml", []byte(text))
}

// TestAnEmptyFileIsTheDefaultCluster: no key, or only a version, gives
// today's default cluster and builder, so the golden tree stays.
func TestAnEmptyFileIsTheDefaultCluster(t *testing.T) {
	want, _ := json.Marshal(Default())
	for _, text := range []string{"", "# nothing but a comment\n", "version: 1\n"} {
		s, builder, err := readFile(t, text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if got, _ := json.Marshal(s); string(got) != string(want) || builder != bib.DefaultBuilder {
			t.Errorf("%q gives\n %s, %s\nnot the default\n %s", text, got, builder, want)
		}
	}
}

// TestEveryKeyReachesTheCluster: a file that sets every key.
func TestEveryKeyReachesTheCluster(t *testing.T) {
	s, builder, err := readFile(t, `version: 1
name: orders
clusterId: q1Sh-9_ISia_zwGINzRvyQ
domain: kafka.example.com
registry: quay.io/me
tag: v1.2.0
security: plaintext
adminUser: root-of-all
images:
  base: quay.io/centos-bootc/centos-bootc:stream10
  kafka: docker.io/apache/kafka:3.9.1
  exporter: docker.io/prom/node-exporter:v1.9.0
  builder: quay.io/centos-bootc/bootc-image-builder@sha256:`+strings.Repeat("ab", 32)+`
brokers:
  count: 4
  ids: [1, 2, 3, 4]
  memoryMiB: 8192
  heapMiB: 4096
  cpus: 4
  port: 19092
  settings:
    num.partitions: 6
    log.retention.hours: 72
controllers:
  count: 3
  ids: [5, 6, 7]
  memoryMiB: 3072
  cpus: 1
  port: 19093
metrics:
  exporterPort: 19100
  jmxExporter:
    enabled: false
disk:
  user: ops
  sshKeys: ["`+exampleKey+`"]
  rootSizeGiB: 40
  dataSizeGiB: 500
  types: [qcow2, vmdk]
  plainRaw: true
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Name, want.ClusterID, want.Domain = "orders", "q1Sh-9_ISia_zwGINzRvyQ", "kafka.example.com"
	want.Registry, want.Tag, want.Security, want.AdminUser = "quay.io/me", "v1.2.0", SecurityPlaintext, "root-of-all"
	want.BaseImage, want.KafkaImage, want.ExporterImage = "quay.io/centos-bootc/centos-bootc:stream10", "docker.io/apache/kafka:3.9.1", "docker.io/prom/node-exporter:v1.9.0"
	want.Brokers, want.BrokerIDs = 4, []int{1, 2, 3, 4}
	want.Broker = RoleSpec{MemoryMiB: 8192, HeapMiB: 4096, CPUs: 4, Port: 19092, Settings: []string{"log.retention.hours=72", "num.partitions=6"}}
	want.Controllers, want.ControllerIDs = 3, []int{5, 6, 7}
	want.Controller = RoleSpec{MemoryMiB: 3072, CPUs: 1, Port: 19093}
	want.ExporterPort, want.MetricsPort = 19100, 0
	want.Disk = bib.Spec{User: "ops", SSHKeys: []string{exampleKey}, RootSizeGiB: 40, DataSizeGiB: 500, Types: []string{"qcow2", "vmdk"}, PlainRaw: true}
	if !reflect.DeepEqual(s, want) {
		g, _ := json.Marshal(s)
		w, _ := json.Marshal(want)
		t.Errorf("the file gives\n %s\nwant\n %s", g, w)
	}
	if builder != "quay.io/centos-bootc/bootc-image-builder@sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("builder %s", builder)
	}
}

// TestABadFileIsOneErrorWithItsLine: every kind of bad input names the
// file, the line, the key and the rule; the same rules as the flags had.
func TestABadFileIsOneErrorWithItsLine(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"an unknown key", "version: 1\nbrokers:\n  count: 3\n  memory: 4096\n",
			"kafka-cluster.yaml:4 (brokers.memory): unknown key \"memory\"; the keys here are count, ids, memoryMiB, heapMiB, cpus, port, settings"},
		{"an unknown top-level key", "version: 1\nbroker:\n  count: 3\n",
			"kafka-cluster.yaml:2 (broker): unknown key \"broker\""},
		{"a wrong type", "version: 1\nbrokers:\n  count: three\n",
			"kafka-cluster.yaml:3: cannot unmarshal !!str `three` into int"},
		{"a list for a mapping", "version: 1\nbrokers: [1, 2]\n",
			"kafka-cluster.yaml:2 (brokers): must be a mapping of count, ids"},
		{"no version", "brokers:\n  count: 1\n",
			"kafka-cluster.yaml (version): 0: this module reads version 1 of the cluster file"},
		{"a future version", "version: 2\n",
			"kafka-cluster.yaml:1 (version): 2: this module reads version 1"},
		{"zero brokers", "version: 1\nbrokers:\n  count: 0\n  ids: []\n",
			"kafka-cluster.yaml:3 (brokers.count): brokers: 0: must be from 1 to 99"},
		{"a port of 0", "version: 1\ncontrollers:\n  port: 0\n",
			"kafka-cluster.yaml:3 (controllers.port): controller port 0: must be from 1 to 65535"},
		{"too many brokers", "version: 1\nbrokers:\n  count: 100\n",
			"kafka-cluster.yaml:3 (brokers.count): brokers: 100: must be from 1 to 99"},
		{"a kafka image on latest", "version: 1\nimages:\n  kafka: docker.io/apache/kafka:latest\n",
			"kafka-cluster.yaml:3 (images.kafka): kafka image: "},
		{"an unqualified builder", "version: 1\nimages:\n  builder: bootc-image-builder\n",
			"kafka-cluster.yaml:3 (images.builder): builder image: "},
		{"a jmx mirror that is not a URL", "version: 1\nmetrics:\n  jmxExporter:\n    url: repo.example.com/jmx.jar\n",
			"kafka-cluster.yaml:4 (metrics.jmxExporter.url): jmx exporter url: "},
		{"a setting kafka-bootc owns", "version: 1\ncontrollers:\n  settings:\n    node.id: 7\n",
			"kafka-cluster.yaml:3 (controllers.settings): controller settings: node.id is set by kafka-bootc"},
		{"a bad security mode", "version: 1\nsecurity: mtls\n",
			"kafka-cluster.yaml:2 (security): security \"mtls\": must be tls"},
		{"a bad ssh key", "version: 1\ndisk:\n  sshKeys: [\"ssh-rsa nope\"]\n",
			"kafka-cluster.yaml:3 (disk.sshKeys): ssh-key 1: "},
		{"ids that clash", "version: 1\nbrokers:\n  count: 1\n  ids: [1001]\n",
			"kafka-cluster.yaml:4 (brokers.ids): controller ids: kafka-broker-1 and kafka-controller-1 both have id 1001"},
		{"not YAML", "version: 1\nbrokers: [\n",
			"kafka-cluster.yaml: yaml: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readFile(t, tc.text)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("%v\nwant an error starting %q", err, tc.want)
			}
		})
	}
}

// FuzzReadFile: any input is a cluster or one error; never a panic.
func FuzzReadFile(f *testing.F) {
	f.Add([]byte("version: 1\nbrokers:\n  count: 4\n"))
	f.Add([]byte("version: 1\nmetrics:\n  jmxExporter:\n    enabled: false\n"))
	f.Add([]byte("version: 1\ndisk:\n  types: [raw, ami]\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("version: 1\nbrokers: {count: [1]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _, err := ReadFile("f.yaml", data)
		if err == nil {
			if _, err := Plan(s); err != nil {
				t.Fatalf("a file read without error plans with %v", err)
			}
		} else if !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("an error that does not name the file: %v", err)
		}
	})
}

func TestAClusterFileOfSeveralDocumentsIsRefusedNamingTheSecond(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"a second cluster", "version: 1\nbrokers:\n  count: 3\n---\nbrokers:\n  count: 9\n", "kafka-cluster.yaml:4: a second YAML document"},
		{"a second, after a comment", "version: 1\n---\n# nothing\nname: other\n", "kafka-cluster.yaml:2: a second YAML document"},
		{"a first marker only", "---\nversion: 1\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadFile("kafka-cluster.yaml", []byte(tc.file))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("one document after a leading ---: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNodeIdsBeyondKafkasInt32AreRefused(t *testing.T) {
	for _, id := range []int{0, -3, 1 << 31, 1<<31 + 7} {
		s := Default()
		s.ControllerIDs = []int{1001, 1002, id}
		if _, err := Plan(s); err == nil || !strings.Contains(err.Error(), "node ids must be from 1 to 2147483647 (Kafka's node.id is an int32)") {
			t.Errorf("controller id %d: %v", id, err)
		}
	}
	s := Default()
	s.BrokerIDs = []int{1, 2, 1<<31 - 1}
	if _, err := Plan(s); err != nil {
		t.Errorf("the largest int32: %v", err)
	}
}
