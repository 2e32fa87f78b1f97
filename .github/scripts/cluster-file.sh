#!/bin/sh
# Prints the cluster file the jobs build from: the repository's own
# kafka-cluster.yaml when it has one; otherwise it writes the default
# cluster with the disks' login, SSH_PUBLIC_KEY, the repository variable.
set -eu
file=kafka-cluster.yaml
if [ ! -f "$file" ]; then
	printf 'version: 1\ndisk:\n  sshKeys: ["%s"]\n' "${SSH_PUBLIC_KEY:?the repository has no kafka-cluster.yaml and no SSH_PUBLIC_KEY variable}" >"$file"
fi
echo "./$file"
