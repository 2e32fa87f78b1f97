package nodes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
)

// The Kafka releases that kafka-bootc renders for. Every rule below was
// read from Kafka's own docs and source: the upgrade notes of each release
// (docs/getting-started/upgrade.md since 4.0, "Notable changes in 4.0.0",
// 4.1.0, 4.2.0, 4.3.0 and 4.4.0) and the apache/kafka image's start-up
// (docker/jvm/launch and KafkaDockerWrapper, which append the KAFKA_
// environment to a mounted server.properties from 3.8.0 to 4.3.1 alike).
const (
	// MinKafkaVersion is the oldest release rendered: the static quorum,
	// the PEM stores and the image's start-up were read at 3.8.0.
	MinKafkaVersion = "3.8.0"
	// maxKafkaMajor is the first major release that is not modelled:
	// Kafka removes deprecated settings and tool options in a major
	// release, and 5.0's are not known.
	maxKafkaMajor = 5
)

// Releases are the Kafka releases whose renderings kafka-bootc's tests
// run on the real Kafka (internal/realkafka): the newest 3.x, where an
// upgrade across 4.0 starts; 4.1, the first release that turns a static
// quorum into a dynamic one; and the default image's.
func Releases() []string {
	v, _ := tagVersion(DefaultKafkaImage)
	return []string{"3.9.2", "4.1.2", v.String()}
}

// KafkaVersion is a Kafka release, major.minor.patch.
type KafkaVersion struct{ Major, Minor, Patch int }

var kafkaRelease = regexp.MustCompile(`^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$`)

// ParseKafkaVersion reads a release as Kafka numbers it: "4.4.0".
func ParseKafkaVersion(s string) (KafkaVersion, bool) {
	m := kafkaRelease.FindStringSubmatch(s)
	if m == nil {
		return KafkaVersion{}, false
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	return KafkaVersion{n(1), n(2), n(3)}, true
}

func (v KafkaVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Release is major.minor, the name of the release's metadata.version
// ("4.4" of 4.4.0).
func (v KafkaVersion) Release() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is major.minor or later.
func (v KafkaVersion) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// tagVersion is the release in an image reference's tag
// (docker.io/apache/kafka:4.4.0 is 4.4.0); false for an image pinned by
// digest alone or tagged otherwise.
func tagVersion(image string) (KafkaVersion, bool) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return KafkaVersion{}, false
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return KafkaVersion{}, false
	}
	return ParseKafkaVersion(tagged.Tag())
}

// planKafkaVersion finds the Kafka release of the cluster's Kafka image:
// the explicit version when one is given, which must agree with a release
// tag; otherwise the tag's. An image pinned by digest alone needs the
// explicit version, since the rendering depends on it.
func planKafkaVersion(image, explicit string) (KafkaVersion, error) {
	fromTag, tagged := tagVersion(image)
	v := fromTag
	if explicit != "" {
		var ok bool
		if v, ok = ParseKafkaVersion(explicit); !ok {
			return KafkaVersion{}, fmt.Errorf("kafka version %q: must be a Kafka release, major.minor.patch (4.4.0)", explicit)
		}
		if tagged && v != fromTag {
			return KafkaVersion{}, fmt.Errorf("kafka version %s: the Kafka image %s is tagged %s; leave the version empty or make the two agree", v, image, fromTag)
		}
	} else if !tagged {
		return KafkaVersion{}, fmt.Errorf("kafka version: the Kafka image %s has no release tag (pinned by digest alone?): give the Kafka release it holds (4.4.0), which decides the settings it is given", image)
	}
	minimum, _ := ParseKafkaVersion(MinKafkaVersion)
	switch {
	case !v.AtLeast(minimum.Major, minimum.Minor):
		return KafkaVersion{}, fmt.Errorf("kafka version %s: kafka-bootc renders Kafka %s and later; use a newer apache/kafka image", v, MinKafkaVersion)
	case v.Major >= maxKafkaMajor:
		return KafkaVersion{}, fmt.Errorf("kafka version %s: Kafka %d is not modelled yet: kafka-bootc renders releases %s to %d.x", v, v.Major, MinKafkaVersion, maxKafkaMajor-1)
	}
	return v, nil
}

// removedSetting is a broker or controller property that a release
// removed, and what replaces it.
type removedSetting struct {
	name    string
	major   int // removed in major.minor
	minor   int
	instead string
}

// removedSettings are the properties that Kafka 4.0 removed ("Notable
// changes in 4.0.0", Common and Broker): set, they would be ignored with a
// warning at best, so a cluster that sets them is refused.
var removedSettings = []removedSetting{
	{"log.message.format.version", 4, 0, "nothing: the message format follows metadata.version"},
	{"message.format.version", 4, 0, "nothing: the message format follows metadata.version"},
	{"delegation.token.master.key", 4, 0, "delegation.token.secret.key"},
	{"offsets.commit.required.acks", 4, 0, "nothing: offset commits wait for all in-sync replicas (KIP-1041)"},
	{"log.message.timestamp.difference.max.ms", 4, 0, "log.message.timestamp.before.max.ms and log.message.timestamp.after.max.ms (KIP-937)"},
	{"metrics.jmx.blacklist", 4, 0, "metrics.jmx.exclude"},
	{"metrics.jmx.whitelist", 4, 0, "metrics.jmx.include"},
	{"auto.include.jmx.reporter", 4, 0, "metric.reporters, which holds JmxReporter by default"},
}

// minimums are lower bounds that a release raised ("Notable changes in
// 4.0.0", KIP-1030).
var minimums = []struct {
	name         string
	major, minor int
	min          int64
	why          string
}{
	{"log.segment.bytes", 4, 0, 1 << 20, "Kafka 4.0 raised its minimum to 1 MiB (KIP-1030)"},
	{"remote.log.manager.copier.thread.pool.size", 4, 0, 1, "Kafka 4.0 no longer accepts -1 (KIP-1030)"},
	{"remote.log.manager.expiration.thread.pool.size", 4, 0, 1, "Kafka 4.0 no longer accepts -1 (KIP-1030)"},
	{"num.replica.fetchers", 4, 2, 1, "Kafka 4.2 gave it a lower bound of 1"},
}

// checkVersionSettings refuses the role's settings that the cluster's
// Kafka release removed or no longer accepts, naming what replaces them.
func checkVersionSettings(r Role, v KafkaVersion, settings []Setting) error {
	for _, s := range settings {
		if strings.HasPrefix(s.Name, "zookeeper.") && v.AtLeast(4, 0) {
			return fmt.Errorf("%s settings: %s: Kafka %s runs in KRaft mode only and has no ZooKeeper settings", r, s.Name, v)
		}
		for _, rm := range removedSettings {
			if s.Name == rm.name && v.AtLeast(rm.major, rm.minor) {
				return fmt.Errorf("%s settings: %s was removed in Kafka %d.%d (the cluster runs %s); instead: %s", r, s.Name, rm.major, rm.minor, v, rm.instead)
			}
		}
		for _, m := range minimums {
			if s.Name != m.name || !v.AtLeast(m.major, m.minor) {
				continue
			}
			n, err := strconv.ParseInt(s.Value, 10, 64)
			if err != nil {
				return fmt.Errorf("%s settings: %s %q: must be a whole number", r, s.Name, s.Value)
			}
			if n < m.min {
				return fmt.Errorf("%s settings: %s %d: must be at least %d: %s", r, s.Name, n, m.min, m.why)
			}
		}
	}
	return nil
}
