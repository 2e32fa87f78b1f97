#!/bin/sh
# Reads build-all's result (--format json; a file, published.json by
# default) and prints it as a Markdown table for the job summary: node,
# image, digest, and whether it was signed with an SBOM attached.
set -eu
echo "| node | image | digest | signed, SBOM |"
echo "|---|---|---|---|"
# shellcheck disable=SC2016 # the backquotes are Markdown's, $ jq's
jq -r '.[] | select((.digest // "") != "")
  | "| \(.node) | `\(.image | split("@")[0])` | `\(.digest)` | \(if .signed and .sbom then "yes" else "no" end) |"' "${1:-published.json}"
