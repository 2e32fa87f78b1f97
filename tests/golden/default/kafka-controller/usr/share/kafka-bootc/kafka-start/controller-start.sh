#!/bin/bash
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
