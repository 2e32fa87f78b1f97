package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/pki"
)

// fakeTools writes Kafka tool scripts that log their arguments and
// KAFKA_OPTS, and answer as the given shell snippets do.
func fakeTools(t *testing.T, bodies map[string]string) (dir, log string) {
	dir = t.TempDir()
	log = filepath.Join(dir, "calls")
	for name, body := range bodies {
		script := "#!/bin/sh\necho \"$(basename \"$0\") $* KAFKA_OPTS=$KAFKA_OPTS\" >> " + log + "\n" + body + "\n"
		os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755)
	}
	return dir, log
}

// TestKafkaStepsRunKafkasToolsAgainstTheBrokersNames: the tools reach the
// brokers by their advertised names, which the JVM resolves from the lab's
// hosts file; writes wait for every in-sync replica; the other CA's client
// trusts the cluster CA, so only its own certificate can be refused, and
// only a handshake failure counts as refused.
func TestKafkaStepsRunKafkasToolsAgainstTheBrokersNames(t *testing.T) {
	c := cluster(t, 3, 3, "lab.test")
	p, err := NewPlan(c, Options{Disks: disks(t, c), RunDir: t.TempDir(), Accel: AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := pki.NewCA("cluster CA", 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bin, calls := fakeTools(t, map[string]string{
		"kafka-topics.sh":           `case "$*" in *other-ca*) echo "org.apache.kafka.common.errors.SslAuthenticationException: SSL handshake failed" >&2; exit 1;; esac`,
		"kafka-console-producer.sh": `cat > "$(dirname "$0")/produced"`,
		"kafka-console-consumer.sh": `cat "$(dirname "$0")/produced"`,
	})
	work := t.TempDir()
	k, err := NewKafkaTools(p, c, bin, "/run/client.properties", caPEM, work)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := k.CreateTopic(ctx, "smoke", 3); err != nil {
		t.Fatal(err)
	}
	records := []string{"one", "two", "three"}
	if err := k.Produce(ctx, "smoke", records); err != nil {
		t.Fatal(err)
	}
	got, err := readBack(ctx, k, "smoke", records)
	if err != nil || !strings.Contains(got, "3 records") {
		t.Fatalf("read back: %q %v", got, err)
	}
	if err := k.OtherCARefused(ctx); err != nil {
		t.Errorf("a handshake failure is the refusal: %v", err)
	}
	log, _ := os.ReadFile(calls)
	bootstrap := "kafka-broker-1.lab.test:9092,kafka-broker-2.lab.test:9092,kafka-broker-3.lab.test:9092"
	for _, want := range []string{
		"kafka-topics.sh --bootstrap-server " + bootstrap + " --command-config /run/client.properties --create --topic smoke --partitions 3 --replication-factor 3 --config min.insync.replicas=2",
		"kafka-console-producer.sh --bootstrap-server " + bootstrap + " --producer.config /run/client.properties --producer-property acks=all",
		"--consumer.config /run/client.properties --topic smoke --from-beginning --max-messages 3",
		"--command-config " + filepath.Join(work, "other-ca.properties") + " --list",
		"KAFKA_OPTS=-Djdk.net.hosts.file=" + filepath.Join(work, "hosts"),
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("no call with %q:\n%s", want, log)
		}
	}
	hosts, _ := os.ReadFile(k.HostsFile)
	if !strings.Contains(string(hosts), "192.168.213.11 kafka-broker-1.lab.test kafka-broker-1\n") {
		t.Errorf("hosts file:\n%s", hosts)
	}
	props, _ := os.ReadFile(k.OtherCA)
	trust := strings.ReplaceAll(strings.TrimSpace(string(caPEM)), "\n", "\\n\\\n")
	if !strings.Contains(string(props), "ssl.truststore.certificates="+trust) {
		t.Errorf("the other client does not trust the cluster CA:\n%s", props)
	}

	// A client let in, or failing otherwise, is no proof.
	open, _ := fakeTools(t, map[string]string{"kafka-topics.sh": "echo smoke"})
	k.Bin = open
	if err := k.OtherCARefused(ctx); err == nil || !strings.Contains(err.Error(), "was let in") {
		t.Errorf("a client let in: %v", err)
	}
	down, _ := fakeTools(t, map[string]string{"kafka-topics.sh": "echo 'TimeoutException: Timed out waiting for a node assignment' >&2; exit 1"})
	k.Bin = down
	if err := k.OtherCARefused(ctx); err == nil || !strings.Contains(err.Error(), "not at the TLS handshake") {
		t.Errorf("a timeout: %v", err)
	}
}
