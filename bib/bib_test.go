package bib

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/osbuild/blueprint/pkg/blueprint"
)

const exampleKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh admin@example.com"

// decode reads a config.toml the way bootc-image-builder does: into
// osbuild's blueprint, refusing keys it does not know.
func decode(t *testing.T, data []byte) blueprint.Blueprint {
	t.Helper()
	var bp blueprint.Blueprint
	md, err := toml.Decode(string(data), &bp)
	if err != nil {
		t.Fatalf("bib would refuse the config: %v\n%s", err, data)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("bib would refuse unknown keys %v in\n%s", u, data)
	}
	return bp
}

func TestConfigParsesAsBootcImageBuilderReadsIt(t *testing.T) {
	const gib = 1 << 30
	hash := "$6$rounds=4096$saltsalt$3xv0bKsUxM5bHzSRwxQ6pW9dl5Zh0YlPjk0tDQsBSBXpj8e5/0RuGuUo2.9MhsPrCd7BcI9Unrh5k0Fb0w8j./"
	tests := []struct {
		name string
		spec Spec
		// fs lists mountpoint=minsize of filesystems or partitions.
		fs []string
	}{
		{"a key and the default root", Spec{User: "kafka", SSHKeys: []string{exampleKey}, RootSizeGiB: 20, Types: []string{"qcow2"}},
			[]string{"/=20"}},
		{"a password and a separate /var", Spec{User: "ops", PasswordHash: hash, RootSizeGiB: 10, DataSizeGiB: 200, Types: []string{"raw"}},
			[]string{"/=10", "/var=200"}},
		{"two keys", Spec{User: "kafka", SSHKeys: []string{exampleKey, exampleKey + "2"}, RootSizeGiB: 20, Types: []string{"qcow2"}},
			[]string{"/=20"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.spec.Validate(); err != nil {
				t.Fatal(err)
			}
			data, err := tc.spec.Config().TOML()
			if err != nil {
				t.Fatal(err)
			}
			bp := decode(t, data)
			users := bp.Customizations.User
			if len(users) != 1 || users[0].Name != tc.spec.User || strings.Join(users[0].Groups, ",") != "wheel" {
				t.Fatalf("users %+v", users)
			}
			u := users[0]
			if got := deref(u.Key); got != strings.Join(tc.spec.SSHKeys, "\n") {
				t.Errorf("key %q", got)
			}
			if got := deref(u.Password); got != tc.spec.PasswordHash {
				t.Errorf("password %q, want the hash %q", got, tc.spec.PasswordHash)
			}
			var fs []string
			for _, f := range bp.Customizations.Filesystem {
				fs = append(fs, f.Mountpoint+"="+itoa(f.MinSize/gib))
			}
			if d := bp.Customizations.Disk; d != nil {
				for _, p := range d.Partitions {
					fs = append(fs, p.Mountpoint+"="+itoa(p.MinSize/gib))
				}
			}
			if strings.Join(fs, " ") != strings.Join(tc.fs, " ") {
				t.Errorf("filesystems %q, want %q", fs, tc.fs)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestOutputsPathsAndRefusals(t *testing.T) {
	outs, err := Outputs([]string{"qcow2", "vmdk", "gce"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, o := range outs {
		paths = append(paths, o.Path)
	}
	if got := strings.Join(paths, " "); got != "qcow2/disk.qcow2 vmdk/disk.vmdk gce/image.tar.gz" {
		t.Errorf("paths %q", got)
	}
	for _, bad := range [][]string{{"qcow2", "qcow2"}, {"raw", "ami"}, {"iso9660"}, {}, {"qcow2", "anaconda-iso"}} {
		if _, err := Outputs(bad); err == nil {
			t.Errorf("Outputs(%q) accepted", bad)
		}
	}
}

func TestCheckLogin(t *testing.T) {
	if err := (Spec{}).CheckLogin(); !errors.Is(err, ErrNoLogin) {
		t.Errorf("no key, no password: %v, want ErrNoLogin", err)
	}
	if err := (Spec{SSHKeys: []string{exampleKey}}).CheckLogin(); err != nil {
		t.Errorf("a key: %v", err)
	}
}
