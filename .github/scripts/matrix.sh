#!/bin/sh
# Reads build-all's result (--format json; a file, published.json by
# default) and prints the disk jobs' matrix: a JSON list of
# {"node": ..., "image": ...}, one per node published by digest; [] when
# there is none.
set -eu
jq -c '[.[] | select((.digest // "") != "") | {node, image}]' "${1:-published.json}"
