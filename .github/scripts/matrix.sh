#!/bin/sh
# Reads build-all's output (a file, published.txt by default) and prints the
# disk jobs' matrix: a JSON list of {"node": ..., "image": ...}, one per node
# published by digest; [] when there is none.
set -eu
awk 'BEGIN { printf "[" }
$2 ~ /@sha256:[0-9a-f]+$/ { printf "%s{\"node\":\"%s\",\"image\":\"%s\"}", sep, $1, $2; sep = "," }
END { print "]" }' "${1:-published.txt}"
