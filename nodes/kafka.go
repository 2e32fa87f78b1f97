package nodes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"dagger/kafka-bootc/quadlets"
)

// Where Kafka keeps its data. The host directory is under /var, which bootc
// keeps across upgrades, and under /var/srv/containers, which the
// container-selinux policy labels container_file_t: created there by
// systemd-tmpfiles with the image user's uid, it needs no recursive chown
// (:U) or relabel (:Z) when the container starts, however large it grows.
const (
	// DataDir is the host directory for Kafka data.
	DataDir = "/var/srv/containers/kafka"
	// hostLogDir is the host side of the log directory bind mount, one level
	// below DataDir so that a filesystem's lost+found is not in Kafka's way.
	hostLogDir = DataDir + "/data"
	// LogDir is Kafka's log.dirs inside the container.
	LogDir = "/var/lib/kafka/data"
	// KafkaUID is the uid of appuser, the user the apache/kafka image runs
	// as (made by "adduser -D" in its Alpine base: the first user, 1000).
	KafkaUID = 1000
	// KafkaStopSeconds is how long a stopping Kafka container gets between
	// SIGTERM and SIGKILL: long enough for a broker's controlled shutdown.
	KafkaStopSeconds = 120
)

// managedProperties are the Kafka properties that kafka-bootc sets from the
// cluster description; a user setting for one of them is refused, naming
// what to change instead.
var managedProperties = map[string]string{
	"process.roles":                       "the node's role",
	"node.id":                             "the node ids (broker-ids, controller-ids)",
	"listeners":                           "the role's port",
	"advertised.listeners":                "the node's hostname and the broker port",
	"listener.security.protocol.map":      "the role's listener",
	"inter.broker.listener.name":          "the broker listener",
	"controller.listener.names":           "the controller listener",
	"controller.quorum.voters":            "the controllers' hostnames, ids and port",
	"controller.quorum.bootstrap.servers": "the controllers' hostnames and port",
	"log.dirs":                            "the data directory " + DataDir,
	"log.dir":                             "the data directory " + DataDir,
}

// The TLS and authorization properties are managed too, in either mode: a
// plaintext cluster has no identities for an authorizer to check.
func init() {
	for _, s := range (&Cluster{TLS: true, AdminUser: DefaultAdminUser}).SecurityProperties() {
		managedProperties[s.Name] = "the security mode (security) and the cluster CA"
	}
}

// securityPrefixes and securityNames are the Kafka properties, beyond the
// ones kafka-bootc sets, through which a setting would change who is
// trusted or how: every TLS and SASL setting (ssl.*, sasl.*,
// security.inter.broker.protocol, the TLS versions among them), the
// authorizer's own (authorizer.*), the principal builder, which decides
// whom a certificate names, and the super users. The prefixes cover the
// settings that a later Kafka adds; TestSecuritySettingsOfTheRealKafkaAreRefused
// (internal/realkafka) holds them against every setting that the real
// brokers and controllers list.
var (
	securityPrefixes = []string{"ssl.", "sasl.", "security.", "authorizer."}
	securityNames    = []string{"principal.builder.class", "super.users", "allow.everyone.if.no.acl.found"}
)

// securitySetting says which setting kafka-bootc manages that name would
// override, reaching it by another name: under a listener's prefix
// (listener.name.<listener>.<setting>, which Kafka reads before the
// setting itself), or as a neighbouring TLS or authorization setting. It
// is empty for a setting that is not about security.
func securitySetting(name string) string {
	inner := name
	if rest, ok := strings.CutPrefix(name, "listener.name."); ok {
		if _, setting, ok := strings.Cut(rest, "."); ok {
			inner = setting
			if _, managed := managedProperties[setting]; managed {
				return setting
			}
		}
	}
	for _, p := range securityPrefixes {
		if strings.HasPrefix(inner, p) {
			return inner
		}
	}
	if slices.Contains(securityNames, inner) {
		return inner
	}
	return ""
}

// EnvName maps a Kafka property to the environment variable that the
// apache/kafka image turns back into it: "." becomes "_", "_" becomes "__"
// and "-" becomes "___", upper-cased behind KAFKA_.
func EnvName(property string) string {
	r := strings.NewReplacer("-", "___", "_", "__", ".", "_")
	return "KAFKA_" + strings.ToUpper(r.Replace(property))
}

// Voters is controller.quorum.voters: id@host:port of every controller.
func (c *Cluster) Voters() string {
	var v []string
	port := c.Roles[Controller].Port
	for _, n := range c.Nodes {
		if n.Role == Controller {
			v = append(v, fmt.Sprintf("%d@%s:%d", n.ID, n.Hostname, port))
		}
	}
	return strings.Join(v, ",")
}

// Properties returns the Kafka properties shared by every node of a role,
// sorted by name: what goes into the role's base image.
func (c *Cluster) Properties(r Role) []Setting {
	rs := c.Roles[r]
	props := map[string]string{
		"process.roles":                  string(r),
		"controller.listener.names":      c.Listener(Controller),
		"log.dirs":                       LogDir,
		"listeners":                      fmt.Sprintf("%s://:%d", c.Listener(r), rs.Port),
		"listener.security.protocol.map": c.Listener(Controller) + ":" + c.protocol(),
	}
	if c.Dynamic {
		props["controller.quorum.bootstrap.servers"] = c.BootstrapServers()
	} else {
		props["controller.quorum.voters"] = c.Voters()
	}
	if r == Broker {
		brokers := c.Count(Broker)
		props["listener.security.protocol.map"] += "," + c.Listener(Broker) + ":" + c.protocol()
		props["inter.broker.listener.name"] = c.Listener(Broker)
		// Kafka's defaults (3, 3, 2) cannot be met by a smaller cluster:
		// consumer groups and transactions would never start.
		props["offsets.topic.replication.factor"] = strconv.Itoa(min(3, brokers))
		props["transaction.state.log.replication.factor"] = strconv.Itoa(min(3, brokers))
		props["transaction.state.log.min.isr"] = strconv.Itoa(min(2, brokers))
		// Share groups' state topic has the same defaults, and Kafka 4.2's
		// upgrade notes ask smaller clusters to lower them before share
		// groups are used.
		if c.KafkaVersion.AtLeast(4, 2) {
			props["share.coordinator.state.topic.replication.factor"] = strconv.Itoa(min(3, brokers))
			props["share.coordinator.state.topic.min.isr"] = strconv.Itoa(min(2, brokers))
		}
	}
	for _, s := range rs.Settings {
		props[s.Name] = s.Value
	}
	return sortedSettings(props)
}

// NodeProperties returns the properties that differ from node to node: the
// node id and, for a broker, the address clients are sent to. A controller
// of a static quorum must not advertise listeners: the image's configure
// script exits for process.roles=controller when it is set; one of a
// dynamic quorum must, and runs kafka-bootc's start.
func (c *Cluster) NodeProperties(n Node) []Setting {
	props := map[string]string{"node.id": strconv.Itoa(n.ID)}
	if n.Role == Broker {
		props["advertised.listeners"] = fmt.Sprintf("%s://%s:%d", c.Listener(Broker), n.Hostname, c.Roles[Broker].Port)
	}
	if n.Role == Controller && c.Dynamic {
		// A dynamic quorum's voters are their advertised endpoints: what
		// add-controller registers, and what the leader reaches. Without
		// it, Kafka's tool sends localhost. kafka-bootc's start runs these
		// controllers, not the image's configure script that refuses it.
		props["advertised.listeners"] = fmt.Sprintf("%s://%s:%d", c.Listener(Controller), n.Hostname, c.Roles[Controller].Port)
	}
	return sortedSettings(props)
}

func sortedSettings(props map[string]string) []Setting {
	out := make([]Setting, 0, len(props))
	for k, v := range props {
		out = append(out, Setting{k, v})
	}
	slices.SortFunc(out, func(a, b Setting) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RoleEnv is the environment of the role's Kafka container: the cluster id,
// the heap, and every property of Properties.
func (c *Cluster) RoleEnv(r Role) []quadlets.Env {
	heap := c.Roles[r].HeapMiB
	env := []quadlets.Env{
		{Name: "CLUSTER_ID", Value: c.ID},
		{Name: "KAFKA_HEAP_OPTS", Value: fmt.Sprintf("-Xms%dm -Xmx%dm", heap, heap)},
	}
	return append(env, toEnv(c.Properties(r))...)
}

// NodeEnv is the environment that the node's drop-in adds.
func (c *Cluster) NodeEnv(n Node) []quadlets.Env {
	return toEnv(c.NodeProperties(n))
}

func toEnv(props []Setting) []quadlets.Env {
	env := make([]quadlets.Env, len(props))
	for i, p := range props {
		env[i] = quadlets.Env{Name: EnvName(p.Name), Value: p.Value}
	}
	return env
}
