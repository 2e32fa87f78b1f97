#!/bin/bash
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
