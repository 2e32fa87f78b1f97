// Package realkafka runs the real Kafka in tests: a rendered cluster as a
// real KRaft cluster on this machine, each node in a network namespace of
// its own, named after its hostname, with the files of its image at their
// absolute paths in a mount namespace of its own, so that the rendered
// configuration is used unchanged. Kafka's jars come from Maven Central,
// by release, resolved by Maven from this package's pom.xml into a cache
// kept per machine.
//
// What the apache/kafka image adds to the jars is small, and the harness
// does it in its own code, each step named after the image's script it
// mirrors (docker/resources/common-scripts/configure and docker/jvm/launch
// in apache/kafka): the configure script's checks, then the image's own
// class kafka.docker.KafkaDockerWrapper, which builds the final
// server.properties from the mounted one and the KAFKA_* environment and
// formats the storage with CLUSTER_ID, then kafka.Kafka.
package realkafka

import (
	"archive/zip"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

//go:embed pom.xml
var pom []byte

// Dist is a Kafka release as the apache/kafka image holds it in
// /opt/kafka: its jars in libs/, and in bin/ the tools under the names the
// image gives them (kafka-topics.sh, ...), each starting its class from
// the jars.
type Dist struct {
	Version string
	// Dir is what the nodes see as /opt/kafka.
	Dir string
	// Agent is the Prometheus JMX exporter's jar.
	Agent string
}

// tools are the image's bin/ scripts that kafka-bootc's probes, steps and
// tests run, each with the classes that a release may hold it as, the
// newer first: Kafka moved most tools from kafka.admin (Scala) to
// org.apache.kafka.tools (Java) between 3.5 and 4.0.
var tools = map[string][]string{
	"kafka-topics.sh":               {"org.apache.kafka.tools.TopicCommand", "kafka.admin.TopicCommand"},
	"kafka-metadata-quorum.sh":      {"org.apache.kafka.tools.MetadataQuorumCommand"},
	"kafka-features.sh":             {"org.apache.kafka.tools.FeatureCommand", "kafka.admin.FeatureCommand"},
	"kafka-broker-api-versions.sh":  {"org.apache.kafka.tools.BrokerApiVersionsCommand", "kafka.admin.BrokerApiVersionsCommand"},
	"kafka-configs.sh":              {"org.apache.kafka.tools.ConfigCommand", "kafka.admin.ConfigCommand"},
	"kafka-acls.sh":                 {"org.apache.kafka.tools.AclCommand", "kafka.admin.AclCommand"},
	"kafka-console-producer.sh":     {"org.apache.kafka.tools.ConsoleProducer", "kafka.tools.ConsoleProducer"},
	"kafka-console-consumer.sh":     {"org.apache.kafka.tools.consumer.ConsoleConsumer", "kafka.tools.ConsoleConsumer"},
	"kafka-storage.sh":              {"kafka.tools.StorageTool"},
	"kafka-reassign-partitions.sh":  {"org.apache.kafka.tools.reassign.ReassignPartitionsCommand", "kafka.admin.ReassignPartitionsCommand"},
	"kafka-leader-election.sh":      {"org.apache.kafka.tools.LeaderElectionCommand", "kafka.admin.LeaderElectionCommand"},
	"kafka-get-offsets.sh":          {"org.apache.kafka.tools.GetOffsetShell", "kafka.tools.GetOffsetShell"},
	"kafka-consumer-groups.sh":      {"org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "kafka.admin.ConsumerGroupCommand"},
	"kafka-delete-records.sh":       {"org.apache.kafka.tools.DeleteRecordsCommand", "kafka.admin.DeleteRecordsCommand"},
	"kafka-log-dirs.sh":             {"org.apache.kafka.tools.LogDirsCommand", "kafka.admin.LogDirsCommand"},
	"kafka-producer-perf-test.sh":   {"org.apache.kafka.tools.ProducerPerformance"},
	"kafka-cluster.sh":              {"org.apache.kafka.tools.ClusterTool"},
	"kafka-transactions.sh":         {"org.apache.kafka.tools.TransactionsCommand"},
	"kafka-verifiable-producer.sh":  {"org.apache.kafka.tools.VerifiableProducer"},
	"kafka-verifiable-consumer.sh":  {"org.apache.kafka.tools.VerifiableConsumer"},
	"kafka-e2e-latency.sh":          {"org.apache.kafka.tools.EndToEndLatency"},
	"kafka-replica-verification.sh": {"org.apache.kafka.tools.ReplicaVerificationTool"},
}

var release = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// CacheDir is where the releases are kept: $KAFKA_BOOTC_KAFKA_CACHE, or
// kafka-bootc/kafka under the user's cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv("KAFKA_BOOTC_KAFKA_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "kafka-bootc", "kafka"), nil
}

// Fetch returns the release, resolving its jars with Maven the first time
// on this machine (a minute or two; Maven keeps its own copy in ~/.m2).
// Several test processes may ask at once: the first resolves, the others
// wait for it.
func Fetch(version string) (*Dist, error) {
	if !release.MatchString(version) {
		return nil, fmt.Errorf("kafka release %q: must be major.minor.patch", version)
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, version)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(cache, version+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	d := &Dist{Version: version, Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		// The scripts are the harness's: written anew, so that a cache
		// made by an older harness gets the current ones.
		if err := d.writeTools(); err != nil {
			return nil, err
		}
		return d, d.findAgent()
	}
	os.RemoveAll(dir)
	if err := resolve(version, dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := d.writeTools(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		return nil, err
	}
	return d, d.findAgent()
}

// resolve runs Maven on the pom: the release's runtime jars into libs/,
// the JMX exporter's agent into agent/.
func resolve(version, dir string) error {
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return errors.New("the real Kafka needs Maven (mvn) and Java 17: apt-get install maven openjdk-17-jre-headless")
	}
	work, err := os.MkdirTemp("", "realkafka-pom")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "pom.xml"), pom, 0o644); err != nil {
		return err
	}
	profile := []string{}
	if !strings.HasPrefix(version, "3.") {
		profile = []string{"-Plog4j2"}
	}
	runs := [][]string{
		append([]string{"-q", "-B", "-Dkafka.version=" + version}, append(profile,
			"dependency:copy-dependencies", "-DincludeScope=runtime", "-DexcludeArtifactIds=jmx_prometheus_javaagent",
			"-DoutputDirectory="+filepath.Join(dir, "libs"))...),
		{"-q", "-B", "-Dkafka.version=" + version, "dependency:copy-dependencies",
			"-DincludeArtifactIds=jmx_prometheus_javaagent", "-DexcludeTransitive=true",
			"-DoutputDirectory=" + filepath.Join(dir, "agent")},
	}
	for _, args := range runs {
		cmd := exec.Command(mvn, args...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("resolving Kafka %s from Maven Central: %v\n%s", version, err, out)
		}
	}
	return os.MkdirAll(filepath.Join(dir, "config"), 0o755)
}

func (d *Dist) findAgent() error {
	m, _ := filepath.Glob(filepath.Join(d.Dir, "agent", "jmx_prometheus_javaagent-*.jar"))
	if len(m) != 1 {
		return fmt.Errorf("kafka %s: no JMX exporter agent in %s/agent", d.Version, d.Dir)
	}
	d.Agent = m[0]
	return nil
}

// classes lists the classes in the release's jars.
func (d *Dist) classes() (map[string]bool, error) {
	jars, err := filepath.Glob(filepath.Join(d.Dir, "libs", "*.jar"))
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, j := range jars {
		r, err := zip.OpenReader(j)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j, err)
		}
		for _, f := range r.File {
			if name, ok := strings.CutSuffix(f.Name, ".class"); ok {
				have[strings.ReplaceAll(name, "/", ".")] = true
			}
		}
		r.Close()
	}
	return have, nil
}

// writeTools writes bin/: each tool starts the first of its classes that
// the release has, with the JVM options that the image's
// kafka-run-class.sh passes (KAFKA_HEAP_OPTS, KAFKA_OPTS), and a tool's
// default heap of 256 MiB.
func (d *Dist) writeTools() error {
	have, err := d.classes()
	if err != nil {
		return err
	}
	bin := filepath.Join(d.Dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		class := ""
		for _, c := range tools[name] {
			if have[c] {
				class = c
				break
			}
		}
		if class == "" {
			continue
		}
		script := fmt.Sprintf(`#!/bin/sh
# %s of Kafka %s, as the apache/kafka image's bin/%s starts it.
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} %s -cp '/opt/kafka/libs/*' ${KAFKA_OPTS:-} %s "$@"
`, name, d.Version, name, LogOptions("tools"), class)
		if err := writeScript(filepath.Join(bin, name), script); err != nil {
			return err
		}
	}
	start := fmt.Sprintf(`#!/bin/sh
# kafka-server-start.sh of Kafka %s, as the image's bin/kafka-server-start.sh
# and kafka-run-class.sh start the server: the heap of KAFKA_HEAP_OPTS (1 GiB
# when unset), kafka-run-class.sh's G1 options, KAFKA_OPTS, and EXTRA_ARGS
# without the scripts' own words (-name NAME, -loggc, -daemon), then
# kafka.Kafka. The harness's logging stands in for KAFKA_LOG4J_OPTS.
set -f
extra= skip=
for w in ${EXTRA_ARGS:-}; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case $w in
    -name) skip=1 ;;
    -loggc | -daemon) ;;
    *) extra="$extra $w" ;;
  esac
done
exec java ${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true %s -cp '/opt/kafka/libs/*' ${KAFKA_OPTS:-} $extra kafka.Kafka "$@"
`, d.Version, LogOptions("server"))
	if err := writeScript(filepath.Join(bin, "kafka-server-start.sh"), start); err != nil {
		return err
	}
	if err := writeLogConfigs(filepath.Join(d.Dir, "etc")); err != nil {
		return err
	}
	for _, c := range []string{"kafka.Kafka", "kafka.docker.KafkaDockerWrapper"} {
		if !have[c] {
			return fmt.Errorf("kafka %s: no class %s in its jars", d.Version, c)
		}
	}
	return nil
}

// writeScript and writeWhole replace a file whole (a rename), so that a
// node that reads it meanwhile reads the old one or the new one, never a
// part.
func writeScript(p, text string) error { return writeWhole(p, text, 0o755) }

func writeWhole(p, text string, mode os.FileMode) error {
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(text), mode); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Tool reports whether the release has the tool.
func (d *Dist) Tool(name string) bool {
	_, err := os.Stat(filepath.Join(d.Dir, "bin", name))
	return err == nil
}

// The logging of the server (INFO, to standard output, which the harness
// keeps in the node's log) and of the tools (warnings, to standard error,
// so that what a tool prints is its answer alone, as the image's
// tools-log4j configuration does), for log4j 2 (Kafka 4) and log4j 1
// (reload4j, Kafka 3).
var logConfigs = map[string]string{
	"server-log4j2.properties": log4j2("SYSTEM_OUT", "info"),
	"tools-log4j2.properties":  log4j2("SYSTEM_ERR", "warn"),
	"server-log4j.properties":  log4j1("System.out", "INFO"),
	"tools-log4j.properties":   log4j1("System.err", "WARN"),
}

func log4j2(target, level string) string {
	return fmt.Sprintf(`status = error
appender.console.type = Console
appender.console.name = CONSOLE
appender.console.target = %s
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = %s
rootLogger.appenderRef.console.ref = CONSOLE
`, target, level)
}

func log4j1(target, level string) string {
	return fmt.Sprintf(`log4j.rootLogger=%s, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.Target=%s
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n
`, level, target)
}

func writeLogConfigs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range logConfigs {
		if err := writeWhole(filepath.Join(dir, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// LogOptions are the JVM options that choose the logging of the server or
// the tools ("server", "tools"), as the nodes see the release.
func LogOptions(of string) string {
	return fmt.Sprintf("-Dlog4j2.configurationFile=/opt/kafka/etc/%[1]s-log4j2.properties -Dlog4j.configuration=file:/opt/kafka/etc/%[1]s-log4j.properties", of)
}
