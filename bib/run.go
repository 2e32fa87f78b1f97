package bib

import (
	"fmt"
	"path"
	"regexp"
	"strings"
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
)

// Image is an image that must be in the builder's container storage
// before bootc install runs: bib no longer pulls, and bootc copies every
// bound image from there.
type Image struct {
	// Ref is the reference that bib and bootc look for.
	Ref string
	// Archive, when set, is an image archive under ImagesDir to load and
	// tag as Ref. Otherwise Pull is pulled and tagged as Ref.
	Archive string
	// Pull is the reference to pull, by digest, when there is no archive.
	Pull string
}

// Run is one bootc-image-builder run for one node.
type Run struct {
	// Target is the node image to install: its registry reference, which
	// becomes the node's upgrade source.
	Target  string
	Images  []Image
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

// Script is the shell script the builder container runs: it empties the
// container storage (a cache volume that would otherwise keep images from
// earlier runs and hide a missing one), puts every image in it under the
// reference bib and bootc expect, and runs bib.
func (r Run) Script() string {
	var b strings.Builder
	b.WriteString(`set -eu
podman rmi --all --force >/dev/null 2>&1 || true
load() {
	id=$(podman load --input "$1" | sed -n 's/^Loaded image[^:]*: *//p' | tail -n 1)
	if [ -z "$id" ]; then echo "podman load $1: no image loaded" >&2; exit 1; fi
	podman tag "$id" "$2"
}
`)
	for _, img := range r.Images {
		if img.Archive != "" {
			fmt.Fprintf(&b, "load %s %s\n", quote(img.Archive), quote(img.Ref))
			continue
		}
		fmt.Fprintf(&b, "podman pull %s\n", quote(img.Pull))
		if img.Pull != img.Ref {
			fmt.Fprintf(&b, "podman tag %s %s\n", quote(img.Pull), quote(img.Ref))
		}
	}
	b.WriteString(shellWords(r.Args()) + "\n")
	for _, o := range r.Outputs {
		b.WriteString(o.pack(OutputDir))
	}
	return b.String()
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
		quote(path.Join(dir, path.Dir(o.Path))), quote(path.Join(dir, o.Exported)),
		quote(path.Base(o.Path)), quote(path.Join(dir, o.Path)))
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shellWords(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quote(a)
	}
	return strings.Join(q, " ")
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
	return []Script{
		{Name: "remove-vms.sh", Content: []byte(remove.String())},
		{Name: "start-vms.sh", Content: []byte(start.String())},
	}
}
