#!/usr/bin/env bash
# Measures what build-all uploads to a registry that lacks the base image,
# as a first push to a new registry does: bytes uploaded against unique
# bytes, and wall time, for a cold run and for a rerun with nothing changed.
# With DISKS=1 it then builds every node's disk with disks, twice (the
# second time with another login, so that only bootc-image-builder runs
# again), and measures the seconds per disk and the bytes exported.
#
# It runs on the local engine of ../shared/engine, whose registry at
# 127.0.0.1:5000 is both the mirror of quay.io (where the stand-in base is
# pulled from) and, as localhost:5000, the registry published to. The two
# names are two registries to containerd, so no layer of the base can be
# mounted from where it was pulled: every upload of it is counted.
#
#   ENGINE_DIR=/root/dagger-engine tests/bench/publish.sh [MODULE]
#
# MODULE is the kafka-bootc checkout to measure (default: this one), so an
# older one can be measured side by side. BASE_MIB (1500), BROKERS (3) and
# CONTROLLERS (3) size the run; DISK_TYPE (qcow2) and PARALLEL (2) the
# disks. A plain raw disk of the default size takes 22 GB of host disk.
set -euo pipefail
: "${ENGINE_DIR:?set ENGINE_DIR to the directory of the local engine}"
module=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
dagger=${DAGGER:-dagger}
base_mib=${BASE_MIB:-1500}
brokers=${BROKERS:-3}
controllers=${CONTROLLERS:-3}
log=$ENGINE_DIR/logs/registry.log
blobs=$ENGINE_DIR/registry-data/docker/registry/v2/blobs/sha256
run=bench-$(date +%s)
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT

# A stand-in base of realistic size: the fixture plus random, so
# incompressible, bytes, under a tag of its own on the quay.io mirror. It is
# pushed as 127.0.0.1:5000, a name that shares no host with localhost:5000
# either, so that the engine knows no repository there to mount it from.
(cd "$empty" && "$dagger" -q -c "container | from quay.io/centos-bootc/centos-bootc:stream9 |
  with-exec -- sh -c 'mkdir -p /usr/share/bench && echo $run > /usr/share/bench/run && dd if=/dev/urandom of=/usr/share/bench/base.bin bs=1048576 count=$base_mib 2>/dev/null' |
  publish 127.0.0.1:5000/centos-bootc/centos-bootc:$run" >/dev/null)

# cluster_file [SSH_KEY]: writes the cluster file of the run, with the
# disks' login when given, and prints its path.
cluster_file() {
  local file="$empty/kafka-cluster.yaml"
  cat >"$file" <<EOF
version: 1
registry: localhost:5000/$run
security: plaintext
images:
  base: quay.io/centos-bootc/centos-bootc:$run
brokers:
  count: $brokers
controllers:
  count: $controllers
metrics:
  jmxExporter:
    enabled: false
disk:
  types: [${DISK_TYPE:-qcow2}]
EOF
  if [ -n "${1:-}" ]; then printf '  sshKeys: ["%s"]\n' "$1" >>"$file"; fi
  echo "$file"
}

# measure NAME: runs build-all and prints what the registry received.
measure() {
  local from start end
  from=$(($(wc -l <"$log") + 1))
  start=$(date +%s.%N)
  "$dagger" -q call -m "$module" --cluster "$(cluster_file)" build-all >/dev/null
  end=$(date +%s.%N)
  # Completed uploads: PUT .../blobs/uploads/...&digest=sha256%3A<hex>, 201.
  # Mounts: POST .../blobs/uploads/?mount=sha256:<hex>, 201.
  tail -n +"$from" "$log" | awk -v run="/v2/$run/" -v blobs="$blobs" -v name="$1" \
    -v secs="$(echo "$end - $start" | bc)" '
    function size(d,   f, cmd, s) { f = blobs "/" substr(d, 1, 2) "/" d "/data"; cmd = "stat -c %s " f; cmd | getline s; close(cmd); return s + 0 }
    $0 ~ /"PUT / && index($0, run) && / 201 / && match($0, /digest=sha256%3A[0-9a-f]+/) {
      d = substr($0, RSTART + 16, RLENGTH - 16); n++; up += size(d); uniq[d] = 1 }
    $0 ~ /"POST / && index($0, run) && / 201 / && match($0, /mount=sha256:[0-9a-f]+/) {
      mounts++; uniq[substr($0, RSTART + 13, RLENGTH - 13)] = 1 }
    END {
      for (d in uniq) u += size(d)
      printf "%-28s %6.1f s  uploads %3d  mounts %3d  uploaded %8.1f MiB  unique %8.1f MiB  ratio %s\n",
        name, secs, n, mounts, up / 1048576, u / 1048576, (u > 0 ? sprintf("%.2f", up / u) : "-")
    }'
}

echo "build-all, $brokers brokers + $controllers controllers, base of $base_mib MiB random, module $module"
measure "cold (registry lacks all)"
measure "rerun, nothing changed"

[ -n "${DISKS:-}" ] || exit 0
disk_type=${DISK_TYPE:-qcow2}
parallel=${PARALLEL:-2}
out=$(mktemp -d)
trap 'rm -rf "$empty" "$out"' EXIT
nodes=$((brokers + controllers))

# disks NAME KEY: builds every node's disk with the SSH key KEY and prints
# the wall time, the seconds per disk and the bytes exported.
disks() {
  local start end
  rm -rf "${out:?}"/*
  start=$(date +%s.%N)
  "$dagger" -q call -m "$module" --cluster "$(cluster_file "$2")" disks --parallel "$parallel" -o "$out" >/dev/null
  end=$(date +%s.%N)
  printf "disks (%s, parallel %d), %d nodes, %-26s %6.1f s, %5.1f s per disk; exported %s bytes, %s bytes on disk\n" \
    "$disk_type" "$parallel" "$nodes" "$1:" "$(echo "$end - $start" | bc)" "$(echo "($end - $start) / $nodes" | bc -l)" \
    "$(du -sb --apparent-size "$out" | cut -f1)" "$(du -sB1 "$out" | cut -f1)"
}

# The second run changes only the disks' login, so every image is kept and
# bootc-image-builder runs again for every node.
disks "images built" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh bench@example.com"
disks "again, another login" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNK3ZRZvMtx0VPwuBYMycR2J5MNjn68LfA0bUaatU5L bench2@example.com"
