#!/bin/sh
# Reads build-all's output (a file, published.txt by default) and prints it
# as a Markdown table for the job summary: node, image, digest, and whether
# it was signed with an SBOM attached.
set -eu
echo "| node | image | digest | signed, SBOM |"
echo "|---|---|---|---|"
while read -r node ref rest; do
	case $ref in
	*@sha256:*) ;;
	*) continue ;;
	esac
	signed=no
	case $rest in
	signed*) signed=yes ;;
	esac
	# shellcheck disable=SC2016 # the backquotes are Markdown's
	printf '| %s | `%s` | `%s` | %s |\n' "$node" "${ref%@*}" "${ref##*@}" "$signed"
done <"${1:-published.txt}"
