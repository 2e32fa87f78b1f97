package realkafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { Main(m) }

// defaultCluster is the default cluster (3 brokers, 3 controllers, tls,
// the default Kafka image's release), as nodes.Default renders it.
func defaultCluster(t *testing.T) *Cluster { return Shared(t, "default", nodes.Default()) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// tool runs a probe's Kafka tool on the first node of the role.
func tool(t *testing.T, cl *Cluster, r nodes.Role, probe string) []byte {
	t.Helper()
	argv, err := probeArgv(cl.C, r, probe)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.Nodes {
		if n.Role == r {
			out, err := n.Container(ctxFor(t, 2*time.Minute), argv...)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	t.Fatalf("no %s", r)
	return nil
}

func TestTheDefaultClusterFormsAQuorumOfThreeVotersAndThreeLiveBrokers(t *testing.T) {
	cl := defaultCluster(t)
	quorum, err := health.ParseReplication(tool(t, cl, nodes.Controller, nodes.ProbeQuorum))
	if err != nil {
		t.Fatal(err)
	}
	var leaders, voters, observers []int
	for _, r := range quorum {
		switch r.Status {
		case "Leader":
			leaders = append(leaders, r.ID)
			voters = append(voters, r.ID)
		case "Follower":
			voters = append(voters, r.ID)
		case "Observer":
			observers = append(observers, r.ID)
		}
	}
	slices.Sort(voters)
	slices.Sort(observers)
	if len(leaders) != 1 || !slices.Equal(voters, []int{1001, 1002, 1003}) || !slices.Equal(observers, []int{1, 2, 3}) {
		t.Errorf("leaders %v, voters %v, observers %v", leaders, voters, observers)
	}
	live, err := health.ParseLiveBrokers(tool(t, cl, nodes.Broker, nodes.ProbeLiveBrokers))
	slices.Sort(live)
	if err != nil || !slices.Equal(live, []int{1, 2, 3}) {
		t.Errorf("live brokers %v, %v", live, err)
	}
}

// roundTrip writes n records to topic with the client and reads every one
// back.
func roundTrip(t *testing.T, client *kgo.Client, topic string, n int) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	var want []string
	for i := range n {
		v := fmt.Sprintf("%s-%d", topic, i)
		want = append(want, v)
		if err := client.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("producing %s: %v", v, err)
		}
	}
	client.AddConsumeTopics(topic)
	var got []string
	for len(got) < n {
		fs := client.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records back: %v", len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("read back %d records, not the %d written", len(got), n)
	}
}

func TestTheAdminClientFilesCreateATopicAndReadEveryRecordBackOverMutualTLS(t *testing.T) {
	cl := defaultCluster(t)
	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 3*time.Minute)
	// Kafka's own tools, with client.properties as client writes it.
	if _, err := cl.Tool(ctx, dir, "kafka-topics.sh", "--create", "--topic", "admin-round-trip", "--replication-factor", "3", "--partitions", "3"); err != nil {
		t.Fatal(err)
	}
	client, err := cl.Kafka(dir, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	roundTrip(t, client, "admin-round-trip", 50)
	out, err := cl.Client(ctx, dir, "/opt/kafka/bin/kafka-console-consumer.sh", "--bootstrap-server", cl.C.Bootstrap(), "--consumer.config", "client.properties",
		"--topic", "admin-round-trip", "--from-beginning", "--max-messages", "50", "--timeout-ms", "60000")
	if err != nil || strings.Count(string(out), "admin-round-trip-") != 50 {
		t.Errorf("Kafka's console consumer read %d records: %v", strings.Count(string(out), "admin-round-trip-"), err)
	}
}

func TestTheKcatScriptThatClientWritesWorksAsWritten(t *testing.T) {
	cl := defaultCluster(t)
	dir, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 2*time.Minute)
	meta, err := cl.Client(ctx, dir, "./kcat.sh", "-b", cl.C.Bootstrap(), "-L")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.Nodes {
		if n.Role == nodes.Broker && !strings.Contains(string(meta), fmt.Sprintf("broker %d at %s:9092", n.ID, n.Hostname)) {
			t.Errorf("kcat -L does not list broker %d:\n%s", n.ID, meta)
		}
	}
	if _, err := cl.Client(ctx, dir, "sh", "-c", `printf 'one\ntwo\nthree\n' | ./kcat.sh -b "$0" -P -t kcat-round-trip`, cl.C.Bootstrap()); err != nil {
		t.Fatal(err)
	}
	out, err := cl.Client(ctx, dir, "./kcat.sh", "-b", cl.C.Bootstrap(), "-C", "-t", "kcat-round-trip", "-o", "beginning", "-e", "-q")
	if err != nil || strings.Join(strings.Fields(string(out)), " ") != "one two three" {
		t.Errorf("kcat read back %q: %v", out, err)
	}
}

func TestAnotherIdentityIsRefusedUntilTheAdminGrantsIt(t *testing.T) {
	cl := defaultCluster(t)
	admin, err := cl.ClientFiles(cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := cl.ClientFiles("orders-app")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := cl.Tool(ctx, admin, "kafka-topics.sh", "--create", "--topic", "granted", "--replication-factor", "3", "--partitions", "1"); err != nil {
		t.Fatal(err)
	}
	client, err := cl.Kafka(reader, kgo.RecordRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	err = client.ProduceSync(ctx, &kgo.Record{Topic: "granted", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("an identity without ACLs produced: %v", err)
	}
	if _, err := cl.Tool(ctx, admin, "kafka-acls.sh", "--add", "--allow-principal", "User:orders-app", "--operation", "Write", "--operation", "Describe", "--topic", "granted"); err != nil {
		t.Fatal(err)
	}
	granted, err := cl.Kafka(reader)
	if err != nil {
		t.Fatal(err)
	}
	defer granted.Close()
	var last error
	for range 20 {
		if last = granted.ProduceSync(ctx, &kgo.Record{Topic: "granted", Value: []byte("x")}).FirstErr(); last == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if last != nil {
		t.Errorf("after the admin's grant: %v", last)
	}
}

func TestAClientOfAnotherCAFailsTheHandshake(t *testing.T) {
	cl := defaultCluster(t)
	certPEM, keyPEM, err := pki.NewCA("another CA", 365, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.LoadCA(certPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := cl.ClientFilesFrom(other, cl.C.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	// The client trusts the cluster's CA, so that only the broker's
	// verdict on the client's certificate is tested.
	os.WriteFile(filepath.Join(dir, "ca.crt"), cl.CA.TrustPEM, 0o644)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cl.CA.TrustPEM)
	b := cl.Node("kafka-broker-1")
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", net.JoinHostPort(b.Addr.String(), "9092"),
		&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: b.Hostname, MinVersion: tls.VersionTLS12})
	if err == nil {
		// TLS 1.3 reports the server's refusal at the first read.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client certificate of another CA: %v", err)
	}
}

func TestABrokerNameThatItsCertificateLacksIsRefusedByTheClient(t *testing.T) {
	cl := defaultCluster(t)
	b := cl.Node("kafka-broker-1")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cl.CA.TrustPEM)
	_, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", net.JoinHostPort(b.Addr.String(), "9092"),
		&tls.Config{RootCAs: pool, ServerName: "kafka-broker-2", MinVersion: tls.VersionTLS12})
	var host x509.HostnameError
	if !errors.As(err, &host) {
		t.Errorf("kafka-broker-1's certificate for the name kafka-broker-2: %v", err)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", net.JoinHostPort(b.Addr.String(), "9092"),
		&tls.Config{RootCAs: pool, ServerName: b.Hostname, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Errorf("kafka-broker-1's certificate for its own name: %v", err)
	} else {
		conn.Close()
	}
}

func TestTheJMXExporterServesKafkasMetricsOnTheRenderedPort(t *testing.T) {
	cl := defaultCluster(t)
	for _, name := range []string{"kafka-broker-1", "kafka-controller-1"} {
		n := cl.Node(name)
		url := fmt.Sprintf("http://%s:%d/metrics", n.Addr, cl.C.MetricsPort)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]string{"kafka-broker-1": "kafka_server_brokertopicmetrics", "kafka-controller-1": "kafka_controller_kafkacontroller"}[name]
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %s: status %d, no %s in %d bytes", name, url, resp.StatusCode, want, len(body))
		}
	}
}

// TestAPlaintextClusterOfFiveBrokersInADomainWithSettingsRuns: one
// cluster holds three renderings that the default does not: plaintext
// mode, a 5+3 topology whose hostnames are fully qualified, and settings
// of each role, which must be in force on the nodes.
func TestAPlaintextClusterOfFiveBrokersInADomainWithSettingsRuns(t *testing.T) {
	spec := nodes.Default()
	spec.Name = "plain"
	spec.Security = nodes.SecurityPlaintext
	spec.Brokers = 5
	spec.Domain = "kafka.test"
	spec.Broker.Settings = []string{"num.partitions=7", "log.retention.hours=72"}
	spec.Controller.Settings = []string{"controller.quorum.fetch.timeout.ms=4000"}
	for _, r := range []*nodes.RoleSpec{&spec.Broker, &spec.Controller} {
		r.HeapMiB = 384
	}
	cl := Own(t, spec)
	live, err := health.ParseLiveBrokers(tool(t, cl, nodes.Broker, nodes.ProbeLiveBrokers))
	slices.Sort(live)
	if err != nil || !slices.Equal(live, []int{1, 2, 3, 4, 5}) {
		t.Errorf("live brokers %v, %v", live, err)
	}
	client, err := cl.Kafka("", kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	roundTrip(t, client, "plain-round-trip", 20)
	ctx := ctxFor(t, 2*time.Minute)
	b := cl.Node("kafka-broker-4")
	out, err := b.Container(ctx, "/opt/kafka/bin/kafka-configs.sh", "--bootstrap-server", "localhost:9092", "--describe", "--all", "--entity-type", "brokers", "--entity-name", "4")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"num.partitions=7 ", "log.retention.hours=72 ", "advertised.listeners=PLAINTEXT://kafka-broker-4.kafka.test:9092 "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("broker 4 does not run with %q", want)
		}
	}
	c := cl.Node("kafka-controller-2")
	out, err = c.Container(ctx, "/opt/kafka/bin/kafka-configs.sh", "--bootstrap-controller", "localhost:9093", "--describe", "--all", "--entity-type", "brokers", "--entity-name", fmt.Sprint(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "controller.quorum.fetch.timeout.ms=4000 ") {
		t.Errorf("controller %d does not run with its setting", c.ID)
	}
}

// TestEveryReleaseTheModelRendersStartsWithItsOwnRendering: a 1+1 cluster
// of each release that the tests run, other than the default's, which
// the tests above run.
func TestEveryReleaseTheModelRendersStartsWithItsOwnRendering(t *testing.T) {
	def := nodes.Default().KafkaImage
	for _, v := range nodes.Releases() {
		if strings.HasSuffix(def, ":"+v) {
			continue
		}
		t.Run(v, func(t *testing.T) {
			spec := nodes.Default()
			spec.Name = "release-" + strings.ReplaceAll(v, ".", "-")
			spec.Brokers, spec.Controllers = 1, 1
			spec.KafkaImage = "docker.io/apache/kafka:" + v
			spec.Broker.HeapMiB, spec.Controller.HeapMiB = 384, 256
			cl := Own(t, spec)
			dir, err := cl.ClientFiles(cl.C.AdminUser)
			if err != nil {
				t.Fatal(err)
			}
			client, err := cl.Kafka(dir, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			roundTrip(t, client, "release-round-trip", 10)
			out, err := cl.Nodes[0].Container(ctxFor(t, time.Minute), "/opt/kafka/bin/kafka-topics.sh", "--version")
			if got, _ := health.ParseVersion(out); err != nil || got != v {
				t.Errorf("the node runs %q, want %s: %v", got, v, err)
			}
		})
	}
}

// TestSecuritySettingsOfTheRealKafkaAreRefused holds the cluster model's
// refusals against every setting that the real brokers and controllers
// list (kafka-configs.sh --describe --all): each one about TLS, SASL,
// principals, super users or the authorizer is refused as a role setting,
// under its own name and under a listener's prefix; each one that
// kafka-bootc sets for the security mode is a setting that Kafka has.
func TestSecuritySettingsOfTheRealKafkaAreRefused(t *testing.T) {
	cl := defaultCluster(t)
	names := map[string]bool{}
	for _, n := range []string{"kafka-broker-1", "kafka-controller-1"} {
		node := cl.Node(n)
		bootstrap := []string{"--bootstrap-server", "localhost:9092"}
		if node.Role == nodes.Controller {
			bootstrap = []string{"--bootstrap-controller", "localhost:9093"}
		}
		out, err := node.Container(ctxFor(t, 2*time.Minute), append(append([]string{"/opt/kafka/bin/kafka-configs.sh"}, bootstrap...),
			"--command-config", "/etc/kafka-bootc/client.properties", "--describe", "--all", "--entity-type", "brokers", "--entity-name", fmt.Sprint(node.ID))...)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if name, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(line, "  ") {
				names[name] = true
			}
		}
	}
	if len(names) < 100 {
		t.Fatalf("read %d settings from the real Kafka", len(names))
	}
	security := func(name string) bool {
		for _, w := range []string{"ssl", "sasl", "principal", "super.users", "authorizer", "acl", "security"} {
			if strings.Contains(name, w) {
				return true
			}
		}
		return false
	}
	refused := func(setting string) bool {
		s := nodes.Default()
		s.Broker.Settings = []string{setting + "=x"}
		_, err := nodes.Plan(s)
		return err != nil
	}
	checked := 0
	for name := range names {
		if !security(name) {
			continue
		}
		checked++
		if !refused(name) {
			t.Errorf("%s, a security setting of Kafka %s, is accepted as a broker setting", name, cl.Dist().Version)
		}
		if !refused("listener.name.broker." + name) {
			t.Errorf("listener.name.broker.%s is accepted as a broker setting", name)
		}
	}
	for _, s := range cl.C.SecurityProperties() {
		if !names[s.Name] {
			t.Errorf("kafka-bootc sets %s, which Kafka %s does not have", s.Name, cl.Dist().Version)
		}
	}
	t.Logf("%d of Kafka's %d settings are about security; each is refused under its own name and a listener's", checked, len(names))
}
