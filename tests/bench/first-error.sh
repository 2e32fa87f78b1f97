#!/usr/bin/env bash
# Measures the seconds from `dagger call ... build-all` to its error for
# two mistakes that a user makes: a Kafka tag that the registry lacks, and
# a base image tag that it lacks. Each run prints its seconds and the
# first line of the error, which must name the reference.
#
# It runs on the local engine of ../shared/engine, like publish.sh:
#
#   ENGINE_DIR=/root/dagger-engine tests/bench/first-error.sh [MODULE]
#
# MODULE is the kafka-bootc checkout to measure (default: this one), so an
# older one can be measured side by side.
set -euo pipefail
: "${ENGINE_DIR:?set ENGINE_DIR to the directory of the local engine}"
module=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
dagger=${DAGGER:-dagger}
run=bench-$(date +%s)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# cluster_file NAME IMAGES: a 1+1 cluster file with the given images block.
cluster_file() {
  local file="$dir/$1.yaml"
  cat >"$file" <<EOF
version: 1
registry: localhost:5000/$run-$1
security: plaintext
brokers:
  count: 1
controllers:
  count: 1
metrics:
  jmxExporter:
    enabled: false
images:
$2
EOF
  echo "$file"
}

# first_error NAME IMAGES WANT: runs build-all, which must fail, and prints
# the seconds it took and the first line of its error that holds WANT.
first_error() {
  local start end out
  start=$(date +%s.%N)
  if out=$("$dagger" -q call -m "$module" --cluster "$(cluster_file "$1" "$2")" build-all 2>&1); then
    echo "$1: build-all succeeded" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  if ! grep -qF -- "$3" <<<"$out"; then
    echo "$1: the error does not name $3:" >&2
    echo "$out" >&2
    exit 1
  fi
  printf '%-10s %8.1f s  %s\n' "$1" "$(echo "$end - $start" | bc)" "$(grep -m1 -F -- "$3" <<<"$out")"
}

echo "mistake     seconds    error"
first_error kafka-tag "  kafka: docker.io/apache/kafka:4.4.99" "docker.io/apache/kafka:4.4.99"
first_error base-tag "  base: quay.io/centos-bootc/centos-bootc:$run" "quay.io/centos-bootc/centos-bootc:$run"
