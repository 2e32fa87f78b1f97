package nodes

import "strings"

// tlsTool is the role image's tool that replaces a node's TLS files in
// place, run as root through sudo by renew-certificates and trust. It reads
// a new file from standard input, so that a node's key travels over SSH as
// the file's content and never on a command line; it writes it under a
// temporary name, readable by root alone until it is complete, then
// renames it over the old file, which is atomic: Kafka and node-exporter
// read either the whole old file or the whole new one. The file it
// replaces stays beside it as <name>.previous, which restore puts back.
//
// It takes no path from its caller: sudoers allows it a fixed set of
// arguments, and the directory is fixed here.
var tlsTool = strings.ReplaceAll(`#!/bin/sh
# kafka-bootc's TLS file tool, rendered by kafka-bootc. As root:
#   tls install node.pem|ca.crt   installs the file read from standard input
#   tls restore node.pem|ca.crt   puts back the file the last install replaced
#   tls show ca.crt               prints the trust store
set -eu
dir=@DIR@
umask 077
fail() { echo "tls: $*" >&2; exit 1; }
[ $# -eq 2 ] || fail "usage: tls install|restore node.pem|ca.crt, or tls show ca.crt"
case $2 in
node.pem) mode=0400 ;;
ca.crt) mode=0644 ;;
*) fail "$2: not a file this tool manages (node.pem, ca.crt)" ;;
esac
file=$dir/$2
case $1 in
show)
	[ "$2" = ca.crt ] || fail "show: only ca.crt, which is public"
	exec cat "$file" ;;
install)
	tmp=$(mktemp "$dir/.$2.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	cat >"$tmp"
	grep -q -e '-----BEGIN CERTIFICATE-----' "$tmp" || fail "the new $2 holds no certificate: nothing changed"
	if [ "$2" = node.pem ]; then
		grep -q -e '-----BEGIN PRIVATE KEY-----' "$tmp" || fail "the new node.pem holds no private key: nothing changed"
	fi
	chmod "$mode" "$tmp"
	sync
	if [ -e "$file" ]; then ln -f "$file" "$file.previous"; fi
	mv -f "$tmp" "$file"
	trap - EXIT
	sync ;;
restore)
	[ -e "$file.previous" ] || fail "no previous $2 to restore: nothing changed"
	tmp=$(mktemp "$dir/.$2.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	cat "$file.previous" >"$tmp"
	chmod "$mode" "$tmp"
	mv -f "$tmp" "$file"
	trap - EXIT
	sync ;;
*) fail "$1: not a command (install, restore, show)" ;;
esac
`, "@DIR@", hostTLSDir)
