package nodes

import (
	"strings"
	"testing"
)

// TestTheKafkaVersionComesFromTheTagOrIsGiven: the release that decides
// the rendering is the image tag's, or the one given for an image pinned
// by digest alone; a release kafka-bootc does not model, a version that
// contradicts the tag, and an image without either, are refused.
func TestTheKafkaVersionComesFromTheTagOrIsGiven(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		image, version, want, err string
	}{
		{image: "docker.io/apache/kafka:4.4.0", want: "4.4.0"},
		{image: "docker.io/apache/kafka:3.8.0", want: "3.8.0"},
		{image: "docker.io/apache/kafka:3.9.1" + digest, want: "3.9.1"},
		{image: "docker.io/apache/kafka" + digest, version: "4.3.1", want: "4.3.1"},
		{image: "quay.io/me/kafka:4.4.0", version: "4.4.0", want: "4.4.0"},
		{image: "docker.io/apache/kafka" + digest, err: "kafka version: the Kafka image docker.io/apache/kafka@sha256:abab"},
		{image: "quay.io/me/kafka:prod", err: "kafka version: the Kafka image quay.io/me/kafka:prod has no release tag"},
		{image: "docker.io/apache/kafka:4.4.0", version: "4.3.1", err: "kafka version 4.3.1: the Kafka image docker.io/apache/kafka:4.4.0 is tagged 4.4.0"},
		{image: "docker.io/apache/kafka" + digest, version: "4.4", err: `kafka version "4.4": must be a Kafka release, major.minor.patch`},
		{image: "docker.io/apache/kafka:3.7.1", err: "kafka version 3.7.1: kafka-bootc renders Kafka 3.8.0 and later"},
		{image: "docker.io/apache/kafka:5.0.0", err: "kafka version 5.0.0: Kafka 5 is not modelled yet"},
	} {
		s := Default()
		s.KafkaImage, s.KafkaVersion = tc.image, tc.version
		c, err := Plan(s)
		switch {
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%s %q: error %v, want one starting %q", tc.image, tc.version, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s %q: %v", tc.image, tc.version, err)
		case tc.err == "" && c.KafkaVersion.String() != tc.want:
			t.Errorf("%s %q: version %s, want %s", tc.image, tc.version, c.KafkaVersion, tc.want)
		}
	}
}

// TestSettingsThatKafka4RemovedAreRefused: a setting that the cluster's
// release removed, or a value below a bound that it raised, is one error
// that names the role's settings, the property and what replaces it; the
// same settings are a 3.8 cluster's to set.
func TestSettingsThatKafka4RemovedAreRefused(t *testing.T) {
	for setting, want := range map[string]string{
		"log.message.format.version=3.0-IV1":           "broker settings: log.message.format.version was removed in Kafka 4.0 (the cluster runs 4.4.0); instead: nothing",
		"log.message.timestamp.difference.max.ms=1000": "broker settings: log.message.timestamp.difference.max.ms was removed in Kafka 4.0 (the cluster runs 4.4.0); instead: log.message.timestamp.before.max.ms and log.message.timestamp.after.max.ms",
		"delegation.token.master.key=k":                "broker settings: delegation.token.master.key was removed in Kafka 4.0 (the cluster runs 4.4.0); instead: delegation.token.secret.key",
		"offsets.commit.required.acks=1":               "broker settings: offsets.commit.required.acks was removed in Kafka 4.0",
		"auto.include.jmx.reporter=false":              "broker settings: auto.include.jmx.reporter was removed in Kafka 4.0",
		"metrics.jmx.blacklist=kafka.log.*":            "broker settings: metrics.jmx.blacklist was removed in Kafka 4.0 (the cluster runs 4.4.0); instead: metrics.jmx.exclude",
		"zookeeper.connect=zk:2181":                    "broker settings: zookeeper.connect: Kafka 4.4.0 runs in KRaft mode only",
		"log.segment.bytes=65536":                      "broker settings: log.segment.bytes 65536: must be at least 1048576: Kafka 4.0 raised its minimum to 1 MiB",
		"log.segment.bytes=lots":                       `broker settings: log.segment.bytes "lots": must be a whole number`,
		"num.replica.fetchers=0":                       "broker settings: num.replica.fetchers 0: must be at least 1",
	} {
		s := exampleSpec()
		s.Broker.Settings = []string{setting}
		if _, err := Plan(s); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s on 4.4.0: %v, want an error starting %q", setting, err, want)
		}
		s.KafkaImage = "docker.io/apache/kafka:3.8.0"
		if _, err := Plan(s); err != nil {
			t.Errorf("%s on 3.8.0: %v", setting, err)
		}
	}
	s := exampleSpec()
	s.Controller.Settings = []string{"log.segment.bytes=1048576", "num.replica.fetchers=2"}
	if _, err := Plan(s); err != nil {
		t.Errorf("values at the new bounds: %v", err)
	}
}

// TestTheClusterFileGivesTheKafkaVersion: images.kafkaVersion pins the
// release of an image pinned by digest; without it the error names the
// image's line, and a wrong one names its own.
func TestTheClusterFileGivesTheKafkaVersion(t *testing.T) {
	image := "docker.io/apache/kafka@sha256:" + strings.Repeat("ab", 32)
	s, _, err := ReadFile("kafka-cluster.yaml", []byte("version: 1\nimages:\n  kafka: "+image+"\n  kafkaVersion: 4.3.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := plan(t, s); c.KafkaVersion.String() != "4.3.1" {
		t.Errorf("version %s", c.KafkaVersion)
	}
	for text, want := range map[string]string{
		"version: 1\nimages:\n  kafka: " + image + "\n":                           "kafka-cluster.yaml:3 (images.kafka): kafka version: the Kafka image",
		"version: 1\nimages:\n  kafka: " + image + "\n  kafkaVersion: latest\n":   `kafka-cluster.yaml:4 (images.kafkaVersion): kafka version "latest"`,
		"version: 1\nbrokers:\n  settings:\n    message.format.version: 0.10.0\n": "kafka-cluster.yaml:3 (brokers.settings): broker settings: message.format.version was removed in Kafka 4.0",
	} {
		if _, _, err := ReadFile("kafka-cluster.yaml", []byte(text)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want an error starting %q", text, err, want)
		}
	}
}
