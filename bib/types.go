package bib

import (
	"fmt"
	"slices"
	"strings"
)

// Output is one disk type and the file bootc-image-builder writes for it,
// relative to its output directory.
type Output struct {
	// Type is the name a user gives (the cluster file's disk.types).
	Type string
	// BibType is bootc-image-builder's --type.
	BibType string
	// Path is where bib writes the disk under /output.
	Path string
	// Exported is where the disk leaves the module: Path, or for a raw
	// disk Path+".tar", a sparse-aware archive of it. A raw disk is a file
	// as large as the disk and mostly holes, and a directory export writes
	// holes out in full: a 20 GiB disk holding a few GiB would take 20.
	Exported string
}

// Sparse reports whether the disk leaves packed in a sparse-aware archive.
func (o Output) Sparse() bool { return o.Exported != o.Path }

// outputs lists every disk type, in the order they are reported.
var outputs = []Output{
	{Type: "qcow2", BibType: "qcow2", Path: "qcow2/disk.qcow2"},
	{Type: "raw", BibType: "raw", Path: "image/disk.raw", Exported: "image/disk.raw.tar"},
	{Type: "ami", BibType: "ami", Path: "image/disk.raw", Exported: "image/disk.raw.tar"},
	{Type: "vmdk", BibType: "vmdk", Path: "vmdk/disk.vmdk"},
	{Type: "vhd", BibType: "vhd", Path: "vpc/disk.vhd"},
	{Type: "gce", BibType: "gce", Path: "gce/image.tar.gz"},
	{Type: "anaconda-iso", BibType: "anaconda-iso", Path: "bootiso/install.iso"},
}

// Types lists the disk types a user can ask for.
func Types() []string {
	names := make([]string, len(outputs))
	for i, o := range outputs {
		names[i] = o.Type
	}
	return names
}

// Outputs resolves disk type names, rejecting unknown types, repeats, an
// empty list, and two types that bib writes to the same file.
func Outputs(types []string) ([]Output, error) {
	if len(types) == 0 {
		return nil, fmt.Errorf("disk types: at least one of %s is needed", strings.Join(Types(), ", "))
	}
	var res []Output
	for _, t := range types {
		i := slices.IndexFunc(outputs, func(o Output) bool { return o.Type == t })
		if i < 0 {
			return nil, fmt.Errorf("disk type %q: unknown; known types are %s", t, strings.Join(Types(), ", "))
		}
		for _, prev := range res {
			if prev.Type == t {
				return nil, fmt.Errorf("disk type %q: given twice", t)
			}
			if prev.Path == outputs[i].Path {
				return nil, fmt.Errorf("disk types %q and %q: both write %s; build them in separate runs", prev.Type, t, prev.Path)
			}
		}
		o := outputs[i]
		if o.Exported == "" {
			o.Exported = o.Path
		}
		res = append(res, o)
	}
	if len(res) > 1 && slices.ContainsFunc(res, func(o Output) bool { return o.Type == "anaconda-iso" }) {
		return nil, fmt.Errorf("disk types %s: bootc-image-builder cannot build an installer ISO and disk images in one run; build anaconda-iso alone", strings.Join(types, ", "))
	}
	return res, nil
}

// Outputs resolves the spec's disk types; with PlainRaw, raw disks leave
// as plain files instead of sparse-aware archives.
func (s Spec) Outputs() ([]Output, error) {
	res, err := Outputs(s.Types)
	if err != nil {
		return nil, err
	}
	if s.PlainRaw {
		for i := range res {
			res[i].Exported = res[i].Path
		}
	}
	return res, nil
}
