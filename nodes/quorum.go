package nodes

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// The quorum modes of a cluster file.
const (
	// QuorumStatic: the controllers are the fixed voters of
	// controller.quorum.voters (kraft.version 0).
	QuorumStatic = "static"
	// QuorumDynamic: the voters are in the metadata log (KIP-853,
	// kraft.version 1); the nodes find the controllers through
	// controller.quorum.bootstrap.servers.
	QuorumDynamic = "dynamic"
)

// BootstrapServers is controller.quorum.bootstrap.servers: host:port of
// every controller.
func (c *Cluster) BootstrapServers() string {
	var v []string
	port := c.Roles[Controller].Port
	for _, n := range c.Nodes {
		if n.Role == Controller {
			v = append(v, fmt.Sprintf("%s:%d", n.Hostname, port))
		}
	}
	return strings.Join(v, ",")
}

// DirectoryID is the directory id that a controller of a new dynamic
// quorum formats its metadata directory with, and that the first voter set
// names it by: derived from the cluster id and the node id, so that the
// node images are the same at every build. Kafka's reserved directory ids
// (the first 100, with the high 64 bits zero) are never the result.
func (c *Cluster) DirectoryID(n Node) string {
	for salt := 0; ; salt++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "kafka-bootc directory id\x00%s\x00%d\x00%d", c.ID, n.ID, salt))
		if binary.BigEndian.Uint64(sum[:8]) != 0 {
			return base64.RawURLEncoding.EncodeToString(sum[:16])
		}
	}
}

// InitialControllers is the first voter set of a dynamic quorum, as
// "kafka-storage.sh format --initial-controllers" takes it:
// id@host:port:directory-id of every controller of the cluster file.
func (c *Cluster) InitialControllers() string {
	var v []string
	port := c.Roles[Controller].Port
	for _, n := range c.Nodes {
		if n.Role == Controller {
			v = append(v, fmt.Sprintf("%d@%s:%d:%s", n.ID, n.Hostname, port, c.DirectoryID(n)))
		}
	}
	return strings.Join(v, ",")
}

// Where a dynamic quorum's controllers find their start: in the role
// image, copied by tmpfiles.d under /var/srv/containers (labelled for
// containers; /usr is not) and mounted read-only into the container.
const (
	controllerStartSrc   = "/usr/share/kafka-bootc/kafka-start/controller-start.sh"
	controllerQuorumSrc  = "/usr/share/kafka-bootc/kafka-start/controller-quorum.sh"
	controllerStartDir   = "/opt/kafka-bootc/start"
	controllerStartName  = "controller-start.sh"
	controllerQuorumName = "controller-quorum.sh"
)

// QuorumJoinAction makes the controller it runs on a voter of its dynamic
// quorum, under the directory id its data directory has now: a voter of
// its node id under another directory id (the node's disk was replaced)
// leaves first. It runs as root, through the sudoers drop-in.
func QuorumJoinAction() []string {
	return []string{podmanPath, "exec", Controller.Unit(), "/bin/bash", path.Join(controllerStartDir, controllerQuorumName), "join"}
}

// QuorumRemoveAction makes every voter of node id leave the quorum, from
// the controller it runs on (a controller being retired, which may be
// gone already).
func QuorumRemoveAction(id int) []string {
	return []string{podmanPath, "exec", Controller.Unit(), "/bin/bash", path.Join(controllerStartDir, controllerQuorumName), "remove", strconv.Itoa(id)}
}

// KRaftUpgradeAction raises kraft.version to 1, which turns a static
// quorum into a dynamic one (Kafka 4.1 and later, KAFKA-16538): the
// voters, with their directory ids, move into the metadata log. It runs
// on a broker, as root; every 4.1 or later broker image allows it, so
// that a static cluster built by this kafka-bootc can be moved by a
// rollout onto a file with quorum: dynamic.
func (c *Cluster) KRaftUpgradeAction() []string {
	return c.kafkaTool(Broker, "kafka-features.sh", "--bootstrap-server", "upgrade", "--feature", "kraft.version=1")
}

// quorumSudoers are the sudoers commands of the quorum actions: join
// exactly, remove with any node id, which the script checks is one
// number.
func quorumSudoers() []string {
	remove := QuorumRemoveAction(0)
	return []string{sudoersCommand(QuorumJoinAction()), sudoersCommand(remove[:len(remove)-1]) + " [0-9]*"}
}

// controllerStartHostDir is where tmpfiles.d copies the start and the
// quorum script; its name changes with them, so that an upgrade that changes it gets a
// fresh copy (tmpfiles' C copies only what does not exist yet).
func controllerStartHostDir() string {
	sum := sha256.Sum256([]byte(controllerStart + "\x00" + controllerQuorum))
	return fmt.Sprintf("/var/srv/containers/kafka-bootc/kafka-start-%x", sum[:6])
}

// controllerStartExec is the command of a dynamic quorum's controller
// container: the start below, given the first voter set and, in tls
// mode, the client configuration that it asks the quorum with.
func (c *Cluster) controllerStartExec() []string {
	argv := []string{"/bin/bash", path.Join(controllerStartDir, controllerStartName), "--initial-controllers", c.InitialControllers()}
	if c.TLS {
		argv = append(argv, "--command-config", ctrClientProperties)
	}
	return argv
}

// controllerStart is the start of a controller of a dynamic quorum, in
// place of the apache/kafka image's own: that one formats the storage with
// the cluster id alone, which Kafka refuses for a controller without
// controller.quorum.voters ("you must specify one of the following:
// --standalone, --initial-controllers, or --no-initial-controllers"), and
// the image says it keeps to static voters. This start writes Kafka's
// configuration as the image does (the mounted server.properties, then
// every KAFKA_* variable as a property, by the image's rule), formats a
// data directory that is not formatted yet, then starts Kafka with the
// image's kafka-server-start.sh.
//
// How it formats is the quorum's safety: a controller whose quorum
// answers joins it as an observer, under a new directory id that Kafka
// draws (--no-initial-controllers), to be added as a voter; only when no
// quorum answers within 15 s, the cluster is new, and every first controller formats
// with the first voter set and its own directory id in it
// (--initial-controllers). A controller whose disk was replaced never
// comes back under the directory id of the voter that lost its data.
const controllerStart = `#!/bin/bash
# Start of a controller of a dynamic KRaft quorum (KIP-853), by kafka-bootc,
# in place of the apache/kafka image's own start, which formats a
# controller for a static quorum only.
set -o nounset -o errexit -o pipefail

initial= command_config=()
while [ $# -gt 0 ]; do
  case $1 in
    --initial-controllers) initial=$2; shift 2 ;;
    --command-config) command_config=(--command-config "$2"); shift 2 ;;
    *) echo "controller-start: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$initial" ]; then echo "controller-start: --initial-controllers is required" >&2; exit 2; fi

# Kafka's configuration, as the image writes it: the mounted file, then
# each KAFKA_* variable but the JVM's and logging's as a property
# (KAFKA_FOO_BAR is foo.bar; __ is _, ___ is -).
config=/opt/kafka/config/server.properties
{
  if [ -s /mnt/shared/config/server.properties ]; then
    cat /mnt/shared/config/server.properties
    echo
  fi
  for name in $(compgen -e); do
    case $name in
      KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_LOG4J_OPTS | KAFKA_OPTS | KAFKA_JMX_OPTS | \
        KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_LOG4J_ROOT_LOGLEVEL | \
        KAFKA_LOG4J_LOGGERS | KAFKA_TOOLS_LOG4J_LOGLEVEL | KAFKA_JMX_HOSTNAME) ;;
      KAFKA_*)
        key=${name#KAFKA_}
        key=${key,,}
        key=${key//_/.}
        key=${key//.../-}
        key=${key//../_}
        printf '%s=%s\n' "$key" "${!name}"
        ;;
    esac
  done
} >"$config"

meta=$(sed -n 's/^log\.dirs=//p' "$config" | cut -d, -f1)/meta.properties
if [ ! -e "$meta" ]; then
  # Does a quorum answer? Asked with the tool's timeouts cut to 15 s, so
  # that the first controllers of a new cluster start soon enough for
  # their brokers (which wait 60 s for them).
  probe=$(mktemp)
  if [ ${#command_config[@]} -gt 0 ]; then cat "${command_config[1]}" >"$probe"; echo >>"$probe"; fi
  printf 'default.api.timeout.ms=15000\nrequest.timeout.ms=5000\n' >>"$probe"
  if timeout 60 /opt/kafka/bin/kafka-metadata-quorum.sh --bootstrap-controller "$KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS" \
    --command-config "$probe" describe --status >/dev/null 2>&1; then
    echo "controller-start: the quorum answers: joining it as an observer, to be added as a voter"
    mode=(--no-initial-controllers)
  else
    echo "controller-start: no quorum answers: a new cluster, formatting with the first voters $initial"
    mode=(--initial-controllers "$initial")
  fi
  rm -f "$probe"
  /opt/kafka/bin/kafka-storage.sh format --cluster-id "$CLUSTER_ID" --config "$config" "${mode[@]}"
fi

# What controller-quorum.sh asks the quorum with: this node's configuration,
# which add-controller reads, and the client's TLS settings.
{
  cat "$config"
  if [ ${#command_config[@]} -gt 0 ]; then echo; cat "${command_config[1]}"; fi
} >/opt/kafka/config/quorum-client.properties

exec /opt/kafka/bin/kafka-server-start.sh "$config"
`

// controllerQuorum changes the voters of a dynamic quorum from a
// controller, as kafka-bootc's quorum operation runs it over SSH, once it
// has checked that the quorum keeps a majority of caught-up voters:
//   - join: this controller becomes a voter under the directory id its
//     data directory has now; a voter of its node id under another
//     directory id (its disk was replaced, and that voter's data is gone)
//     leaves first;
//   - remove N: every voter of node id N leaves (a controller retired).
//
// Each is a no-op when the quorum is already so, so that a rerun resumes.
const controllerQuorum = `#!/bin/bash
# Changes the voters of a dynamic KRaft quorum (KIP-853) from a controller,
# by kafka-bootc. Usage: controller-quorum.sh join | remove NODE-ID
set -o nounset -o errexit -o pipefail

config=/opt/kafka/config/quorum-client.properties
quorum() {
  /opt/kafka/bin/kafka-metadata-quorum.sh --bootstrap-controller "$KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS" \
    --command-config "$config" "$@"
}
# voters prints "node-id directory-id" of every voter.
voters() {
  local out
  out=$(quorum describe --replication)
  awk 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["Status"] == "Leader" || $col["Status"] == "Follower" { print $col["NodeId"], $col["DirectoryId"] }' <<<"$out"
}

case ${1:-} in
  join)
    if [ $# -ne 1 ]; then echo "usage: controller-quorum.sh join" >&2; exit 2; fi
    me=$KAFKA_NODE_ID
    logdir=$(sed -n 's/^log\.dirs=//p' /opt/kafka/config/server.properties | cut -d, -f1)
    dir=$(sed -n 's/^directory\.id=//p' "$logdir/meta.properties")
    current=$(voters)
    if grep -qx "$me $dir" <<<"$current"; then
      echo "controller $me ($dir) is a voter already"
      exit 0
    fi
    for stale in $(awk -v me="$me" '$1 == me { print $2 }' <<<"$current"); do
      echo "removing voter $me ($stale): this node's data directory is $dir now"
      quorum remove-controller --controller-id "$me" --controller-directory-id "$stale"
    done
    echo "adding controller $me ($dir) as a voter"
    quorum add-controller
    ;;
  remove)
    if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then echo "usage: controller-quorum.sh remove NODE-ID" >&2; exit 2; fi
    gone=yes
    for d in $(awk -v id="$2" '$1 == id { print $2 }' <<<"$(voters)"); do
      echo "removing voter $2 ($d)"
      quorum remove-controller --controller-id "$2" --controller-directory-id "$d"
      gone=
    done
    if [ -n "$gone" ]; then echo "node $2 is no voter"; fi
    ;;
  *)
    echo "usage: controller-quorum.sh join | remove NODE-ID" >&2
    exit 2
    ;;
esac
`
