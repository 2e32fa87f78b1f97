package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
)

// KafkaTools is a Kafka client made of Kafka's own command-line tools, run
// where the lab runs (the lab's image is the cluster's Kafka image). The
// JVM resolves the brokers' names from the lab's hosts file
// (jdk.net.hosts.file), so the client follows the advertised listeners to
// the VMs as a client on the nodes' own network would.
type KafkaTools struct {
	// Bin holds kafka-topics.sh and the console producer and consumer.
	Bin string
	// Config is the client's properties, the cluster CA's admin client
	// (as the client function writes them); OtherCA those of a client of
	// another CA.
	Config, OtherCA string
	Bootstrap       string
	HostsFile       string
	// Timeout bounds each tool.
	Timeout time.Duration
}

// NewKafkaTools writes the hosts file and the other CA's client into dir,
// and returns the client of the plan's brokers. caPEM is the cluster CA's
// certificate, which the other client trusts, so that only its own
// certificate can make the brokers refuse it.
func NewKafkaTools(p *Plan, c *nodes.Cluster, bin, config string, caPEM []byte, dir string) (*KafkaTools, error) {
	var hosts strings.Builder
	var bootstrap []string
	for _, vm := range p.VMs {
		fmt.Fprintf(&hosts, "%s %s\n", vm.IP, strings.Join(vm.Names(), " "))
		if vm.Node.Role == nodes.Broker {
			bootstrap = append(bootstrap, fmt.Sprintf("%s:%d", vm.Node.Hostname, p.KafkaPort))
		}
	}
	k := &KafkaTools{Bin: bin, Config: config, Bootstrap: strings.Join(bootstrap, ","),
		HostsFile: filepath.Join(dir, "hosts"), OtherCA: filepath.Join(dir, "other-ca.properties"), Timeout: 2 * time.Minute}
	if err := os.WriteFile(k.HostsFile, []byte(hosts.String()), 0o644); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := pki.NewCA("kafka-bootc lab: another CA", 2, time.Now())
	if err != nil {
		return nil, err
	}
	other, err := pki.LoadCA(certPEM, keyPEM, time.Now())
	if err != nil {
		return nil, err
	}
	cert, key, err := other.Issue(nodes.ClientIdentity(c.AdminUser, 1), time.Now())
	if err != nil {
		return nil, err
	}
	for _, f := range c.ClientFiles(c.AdminUser, cert, key, caPEM) {
		if f.Path == "client.properties" {
			// Give up within seconds rather than retry for a minute.
			props := string(f.Content) + "request.timeout.ms=10000\ndefault.api.timeout.ms=20000\n"
			return k, os.WriteFile(k.OtherCA, []byte(props), 0o600)
		}
	}
	return nil, errors.New("client files: no client.properties")
}

// tool runs one of Kafka's tools and returns its standard output; an
// error holds the end of its output.
func (k *KafkaTools) tool(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(k.Bin, name), args...)
	cmd.Env = append(os.Environ(), "KAFKA_OPTS=-Djdk.net.hosts.file="+k.HostsFile, "KAFKA_HEAP_OPTS=-Xmx256m")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", name, err, strings.Join(lastLines(errOut.String()+out.String(), 3), "; "))
	}
	return out.String(), nil
}

// CreateTopic creates the topic with 3 partitions and the replication
// factor, writes acknowledged by at least 2 replicas where there are.
func (k *KafkaTools) CreateTopic(ctx context.Context, topic string, replicas int) error {
	_, err := k.tool(ctx, "", "kafka-topics.sh", "--bootstrap-server", k.Bootstrap, "--command-config", k.Config,
		"--create", "--topic", topic, "--partitions", "3", "--replication-factor", strconv.Itoa(replicas),
		"--config", "min.insync.replicas="+strconv.Itoa(min(2, replicas)))
	return err
}

// Produce writes one record per line, acks=all.
func (k *KafkaTools) Produce(ctx context.Context, topic string, records []string) error {
	_, err := k.tool(ctx, strings.Join(records, "\n")+"\n", "kafka-console-producer.sh", "--bootstrap-server", k.Bootstrap,
		"--producer.config", k.Config, "--producer-property", "acks=all", "--topic", topic)
	return err
}

// Consume reads n records from the topic's beginning.
func (k *KafkaTools) Consume(ctx context.Context, topic string, n int) ([]string, error) {
	out, err := k.tool(ctx, "", "kafka-console-consumer.sh", "--bootstrap-server", k.Bootstrap,
		"--consumer.config", k.Config, "--topic", topic, "--from-beginning", "--max-messages", strconv.Itoa(n), "--timeout-ms", "60000")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(out, "\n"), "\n"), nil
}

// OtherCARefused lists the topics as a client of another CA: the brokers
// must end its TLS handshake. Any other failure is not that proof.
func (k *KafkaTools) OtherCARefused(ctx context.Context) error {
	out, err := k.tool(ctx, "", "kafka-topics.sh", "--bootstrap-server", k.Bootstrap, "--command-config", k.OtherCA, "--list")
	if err == nil {
		return fmt.Errorf("a client whose certificate another CA signed was let in: it listed %q", strings.TrimSpace(out))
	}
	if !refusedHandshake(err.Error()) {
		return fmt.Errorf("the other CA's client failed, but not at the TLS handshake: %v", err)
	}
	return nil
}

// refusedHandshake says whether a Kafka tool failed authenticating over
// TLS, as Kafka's clients report it (SslAuthenticationException).
func refusedHandshake(out string) bool {
	return strings.Contains(out, "SslAuthenticationException") || strings.Contains(out, "SSL handshake failed")
}
