package bib

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"dagger/kafka-bootc/internal/shell"
)

// DefaultBuilder is the bootc-image-builder image. It is the centos-bootc
// one on purpose: ghcr.io/osbuild/image-builder fails on logically bound
// images (osbuild/image-builder#2681).
const DefaultBuilder = "quay.io/centos-bootc/bootc-image-builder:latest"

// Paths inside the builder container.
const (
	// Storage must be a cache volume: podman refuses overlay on the
	// container's own overlay root, and bib insists on overlay.
	Storage    = "/var/lib/containers/storage"
	OutputDir  = "/output"
	StoreDir   = "/store"
	RPMMDDir   = "/rpmmd"
	ConfigPath = "/config.toml"
	// ImagesDir holds the image archives to load.
	ImagesDir = "/images"
	// SeedDir holds a seed: the archive of a builder storage that holds
	// the images nodes share.
	SeedDir   = "/seed"
	SeedStore = SeedDir + "/store.tar"
	// SeedRef names the base image in a seed's storage. A node's run
	// drops it once its own image, built on the base, is in.
	SeedRef = "localhost/kafka-bootc/seed:base"
)

// Image is an image that must be in the builder's container storage
// before bootc install runs: bib no longer pulls, and bootc copies every
// bound image from there.
type Image struct {
	// Ref is the reference that bib and bootc look for.
	Ref string
	// Archive, when set, is an image archive under ImagesDir to load and
	// name Ref. Otherwise Pull is pulled and named Ref.
	Archive string
	// Pull is the reference to pull, by digest, when there is no archive.
	// Layers the storage holds already are not pulled again.
	Pull string
	// PlainHTTP is set for a pull from a registry that speaks plain HTTP,
	// such as the engine's own service that hands images to the builder.
	PlainHTTP bool
}

// Seed is what nodes share in the builder's storage: the bound images and
// the bootc base image, on whose layers every node image is built. Its
// script puts them in an empty storage once and archives the storage's
// files; each node's run restores that archive instead of loading the same
// gigabytes again, and pulls only its own layers. osbuild reads images
// from the storage's graph root only (its containers-storage source and
// input use nothing else), so a shared read-only image store would be
// invisible to it: each node's storage must hold every layer itself.
type Seed struct {
	// Base, when set, is the image that the nodes' images are built on,
	// stored as SeedRef.
	Base *Image
	// Images are the images every node needs besides its own.
	Images []Image
}

// Run is one bootc-image-builder run for one node.
type Run struct {
	// Target is the node image to install: its registry reference, which
	// becomes the node's upgrade source.
	Target string
	// Images are the node's own images, put in the storage on the seed.
	Images []Image
	// Seed, when set, is restored from SeedDir before the images go in.
	Seed    *Seed
	Outputs []Output
}

// Args is bootc-image-builder's command line.
func (r Run) Args() []string {
	args := []string{"bootc-image-builder", "build"}
	for _, o := range r.Outputs {
		args = append(args, "--type", o.BibType)
	}
	return append(args, "--progress", "verbose", "--output", OutputDir, r.Target)
}

// prelude empties the container storage, a cache volume that would
// otherwise keep images from earlier runs and hide a missing one, and
// defines the script's functions.
const prelude = `set -eu
graph=$(podman info --format '{{.Store.GraphRoot}}')
runroot=$(podman info --format '{{.Store.RunRoot}}')
rm -rf "$graph"/* "$graph"/.[!.]* "$runroot"/* "$runroot"/.[!.]*
# name IMAGE REF: REF becomes the image's one name (an archive with no
# name loads as its ID, a pull by digest has no tag).
name() {
	id=$(podman image inspect --format '{{.Id}}' "$1")
	podman untag "$id"
	podman tag "$id" "$2"
}
# load ARCHIVE REF
load() {
	echo "kafka-bootc: loading $2"
	loaded=$(podman load --input "$1" | sed -n 's/^Loaded image[^:]*: *//p' | tail -n 1)
	if [ -z "$loaded" ]; then echo "podman load $1: no image loaded" >&2; exit 1; fi
	name "$loaded" "$2"
}
# exactly REF...: fails unless the storage holds each REF and no other image.
exactly() {
	want=
	for ref; do
		id=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null) || { echo "builder storage: image $ref is missing" >&2; exit 1; }
		want="$want${id#sha256:}
"
	done
	want=$(printf %s "$want" | sort -u)
	have=$(podman images --all --quiet --no-trunc | sed 's/^sha256://' | sort -u)
	if [ "$want" != "$have" ]; then
		echo "builder storage: it holds other images than $*:" >&2
		podman images --all >&2
		exit 1
	fi
}
`

// Script is the shell script a node's builder container runs: it empties
// the container storage, restores the seed into it, puts the node's
// images in it under the references bib and bootc expect, checks that the
// storage holds exactly the images the node needs, and runs bib.
func (r Run) Script() string {
	var b strings.Builder
	b.WriteString(prelude)
	refs := refsOf(r.Images)
	if r.Seed != nil {
		b.WriteString("echo 'kafka-bootc: restoring the seed'\n")
		fmt.Fprintf(&b, "tar --xattrs --xattrs-include='*' --numeric-owner -xpf %s -C \"$graph\"\n", shell.Quote(SeedStore))
		refs = append(refsOf(r.Seed.Images), refs...)
	}
	for _, img := range r.Images {
		b.WriteString(img.put())
	}
	if r.Seed != nil && r.Seed.Base != nil {
		// The base image goes; its layers stay, under the node image's.
		fmt.Fprintf(&b, "podman rmi %s >/dev/null\n", shell.Quote(SeedRef))
	}
	b.WriteString("exactly " + shell.Join(refs) + "\n")
	b.WriteString("echo 'kafka-bootc: storage ready'\n")
	b.WriteString(shell.Join(r.Args()) + "\n")
	for _, o := range r.Outputs {
		b.WriteString(o.pack(OutputDir))
	}
	return b.String()
}

// Script is the shell script a seed's builder container runs: it puts the
// base and the shared images in an empty storage, checks it holds just
// those, and archives the storage's files in SeedDir. podman's own
// database is left out: it records containers, not images, and a node's
// podman makes its own.
func (s Seed) Script() string {
	var b strings.Builder
	b.WriteString(prelude)
	refs := refsOf(s.Images)
	if s.Base != nil {
		base := *s.Base
		base.Ref = SeedRef
		b.WriteString(base.put())
		refs = append([]string{SeedRef}, refs...)
	}
	for _, img := range s.Images {
		b.WriteString(img.put())
	}
	b.WriteString("exactly " + shell.Join(refs) + "\n")
	b.WriteString("echo 'kafka-bootc: archiving the seed'\n")
	fmt.Fprintf(&b, "tar --xattrs --xattrs-include='*' --numeric-owner --exclude=./libpod -cf %s -C \"$graph\" .\n", shell.Quote(SeedStore))
	return b.String()
}

// put is the shell command that puts an image in the storage under its
// reference.
func (img Image) put() string {
	if img.Archive != "" {
		return fmt.Sprintf("load %s %s\n", shell.Quote(img.Archive), shell.Quote(img.Ref))
	}
	pull := "podman pull"
	if img.PlainHTTP {
		pull += " --tls-verify=false"
	}
	s := fmt.Sprintf("echo %s\n%s %s\n", shell.Quote("kafka-bootc: pulling "+img.Ref), pull, shell.Quote(img.Pull))
	if img.Pull != img.Ref {
		s += fmt.Sprintf("name %s %s\n", shell.Quote(img.Pull), shell.Quote(img.Ref))
	}
	return s
}

func refsOf(images []Image) []string {
	refs := make([]string, len(images))
	for i, img := range images {
		refs[i] = img.Ref
	}
	return refs
}

// pack is the shell command that packs a sparse disk under dir into its
// archive, holes kept as a map (GNU tar's --sparse; bib's image and every
// Linux distribution have GNU tar), and removes the disk. It is empty for
// a disk that leaves as it is.
func (o Output) pack(dir string) string {
	if !o.Sparse() {
		return ""
	}
	return fmt.Sprintf("tar --sparse -C %s -cf %s %s\nrm %s\n",
		shell.Quote(path.Join(dir, path.Dir(o.Path))), shell.Quote(path.Join(dir, o.Exported)),
		shell.Quote(path.Base(o.Path)), shell.Quote(path.Join(dir, o.Path)))
}

// VM is a virtual machine to start from a node's disk.
type VM struct {
	Name      string
	MemoryMiB int
	CPUs      int
}

// Script is an executable file of the disks directory.
type Script struct {
	Name    string
	Content []byte
}

// waitForAddresses ends start-vms.sh: it waits for each VM's address
// (libvirt's DHCP lease) and its sshd, and writes what running needs to
// reach the nodes: addresses.txt (NODE=IP lines, for --address-file) and
// known_hosts (their host keys, for --known-hosts). Both are replaced
// whole, only once every node answered.
const waitForAddresses = `# Wait for each VM's address and sshd, then write addresses.txt (NODE=IP,
# for running --address-file) and known_hosts (for running --known-hosts).
TIMEOUT=${TIMEOUT:-600}
POLL=${POLL:-5}
wait_for() {
	since=$(date +%%s)
	until "$@"; do
		if [ $(($(date +%%s) - since)) -ge "$TIMEOUT" ]; then return 1; fi
		sleep "$POLL"
	done
}
address() {
	ip=$(virsh domifaddr "$1" --source lease 2>/dev/null | awk '$3 == "ipv4" { sub("/.*", "", $4); print $4; exit }')
	[ -n "$ip" ]
}
host_keys() {
	ssh-keyscan -T 5 "$1" 2>/dev/null >keys.tmp || true
	grep -q "^$1 " keys.tmp
}
: >addresses.txt.tmp
: >known_hosts.tmp
# shellcheck disable=SC2043 # disk writes the scripts of one node
for vm in %s; do
	wait_for address "$vm" || { echo "start-vms.sh: $vm has no address after $TIMEOUT s (virsh domifaddr $vm --source lease)" >&2; exit 1; }
	wait_for host_keys "$ip" || { echo "start-vms.sh: $vm ($ip) does not answer on SSH after $TIMEOUT s" >&2; exit 1; }
	echo "$vm=$ip" >>addresses.txt.tmp
	cat keys.tmp >>known_hosts.tmp
done
rm -f keys.tmp
mv addresses.txt.tmp addresses.txt
mv known_hosts.tmp known_hosts
echo "start-vms.sh: every node answers; addresses.txt and known_hosts are in $(pwd)"
`

// VMScripts renders remove-vms.sh and start-vms.sh, which remove and start
// the cluster's VMs with virsh and virt-install from the exported disks
// directory. They need a qcow2 or raw disk; with neither, there are none.
func VMScripts(vms []VM, outputs []Output) []Script {
	var disk Output
	for _, o := range outputs {
		if o.Type == "qcow2" || o.Type == "raw" {
			disk = o
			break
		}
	}
	if disk.Path == "" {
		return nil
	}
	format := disk.Type
	var start, remove strings.Builder
	start.WriteString(`#!/bin/sh
# Starts the cluster's VMs with virt-install, from copies of the disks in
# this directory. IMAGES names where the copies go; NETWORK the libvirt
# network, whose DNS must resolve the node names (libvirt's default does).
set -eu
cd "$(dirname "$0")"
IMAGES=${IMAGES:-/var/lib/libvirt/images}
NETWORK=${NETWORK:-default}
`)
	remove.WriteString(`#!/bin/sh
# Stops and removes the cluster's VMs and the disk copies start-vms.sh made.
set -eu
`)
	for _, vm := range vms {
		if disk.Sparse() {
			// tar restores the holes of an archive made with --sparse.
			fmt.Fprintf(&start, `tar -xf %[1]s/%[2]s -C "$IMAGES" --transform 's|^%[4]s$|%[1]s.%[3]s|'
`, vm.Name, disk.Exported, format, regexp.QuoteMeta(path.Base(disk.Path)))
		} else {
			fmt.Fprintf(&start, `cp --sparse=always %[1]s/%[2]s "$IMAGES/%[1]s.%[3]s"
`, vm.Name, disk.Path, format)
		}
		fmt.Fprintf(&start, `virt-install --import --name %[1]s --memory %[3]d --vcpus %[4]d \
	--disk "path=$IMAGES/%[1]s.%[2]s,format=%[2]s" --os-variant centos-stream9 \
	--network "network=$NETWORK" --noautoconsole
`, vm.Name, format, vm.MemoryMiB, vm.CPUs)
		fmt.Fprintf(&remove, "virsh destroy %[1]s || true\nvirsh undefine %[1]s --remove-all-storage || true\n", vm.Name)
	}
	names := make([]string, len(vms))
	for i, vm := range vms {
		names[i] = vm.Name
	}
	// Node names are letters, digits and '-' (nodes.Plan): no quoting.
	fmt.Fprintf(&start, waitForAddresses, strings.Join(names, " "))
	return []Script{
		{Name: "remove-vms.sh", Content: []byte(remove.String())},
		{Name: "start-vms.sh", Content: []byte(start.String())},
	}
}
