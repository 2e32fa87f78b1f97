// Package bib holds what kafka-bootc tells bootc-image-builder: the disk
// settings a user gives, the config.toml they become, the disk types with
// the paths bib writes them to, and the command line of a run.
package bib

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Spec is the disk settings of every node.
type Spec struct {
	// User is the login user, a member of wheel.
	User string
	// SSHKeys are the user's authorized SSH public keys.
	SSHKeys []string
	// PasswordHash is the user's password as a crypt(3) hash; empty for
	// SSH-only login.
	PasswordHash string
	// RootSizeGiB is the minimum size of the root filesystem.
	RootSizeGiB int
	// DataSizeGiB, when more than 0, gives /var, where Kafka keeps its data,
	// a partition of its own of at least this size.
	DataSizeGiB int
	// Types are the disk types to build, for example "qcow2" or "raw".
	Types []string
	// PlainRaw exports raw disks as plain files, as large as the disk,
	// instead of sparse-aware tar archives.
	PlainRaw bool
}

// DefaultUser is the login user of the reference flow.
const DefaultUser = "kafka"

// DefaultSpec is a qcow2 disk with a 20 GiB root and user kafka.
func DefaultSpec() Spec {
	return Spec{User: DefaultUser, RootSizeGiB: 20, Types: []string{"qcow2"}}
}

// ErrNoLogin says that a disk would have no way to log in.
var ErrNoLogin = errors.New("disk: a disk needs an SSH public key (the cluster file's disk.sshKeys) or a password hash (--password) to log in")

var (
	userName  = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	cryptHash = regexp.MustCompile(`^\$(1|5|6|y|gy|2[aby]|7)\$[./A-Za-z0-9$=,]+$`)
	keyTypes  = []string{
		"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
	}
)

// MaxDiskGiB bounds a disk's sizes: every disk type is one file on the
// machine that builds it, and 16 TiB is the largest file that ext4 (with
// its usual 4 KiB blocks) holds.
const MaxDiskGiB = 16 << 10

// Validate reports the first setting that bootc-image-builder would refuse
// or that would make an unusable disk.
func (s Spec) Validate() error {
	if !userName.MatchString(s.User) || s.User == "root" {
		return fmt.Errorf("disk user %q: must be a lower-case login name (letters, digits, _ and -, at most 32) other than root", s.User)
	}
	for i, k := range s.SSHKeys {
		if err := checkSSHKey(k); err != nil {
			return fmt.Errorf("ssh-key %d: %w", i+1, err)
		}
	}
	if s.PasswordHash != "" && !cryptHash.MatchString(s.PasswordHash) {
		return errors.New("password: must be a crypt(3) hash such as the output of `openssl passwd -6`, never the password itself")
	}
	if s.RootSizeGiB < 1 || s.RootSizeGiB > MaxDiskGiB {
		return fmt.Errorf("root size %d GiB: must be from 1 to %d", s.RootSizeGiB, MaxDiskGiB)
	}
	if s.DataSizeGiB < 0 || s.DataSizeGiB > MaxDiskGiB {
		return fmt.Errorf("data size %d GiB: must be 0 (no separate filesystem) or up to %d", s.DataSizeGiB, MaxDiskGiB)
	}
	if s.RootSizeGiB+s.DataSizeGiB > MaxDiskGiB {
		return fmt.Errorf("root size %d GiB and data size %d GiB: together must be at most %d GiB: a disk is one file, and 16 TiB is the largest file that ext4 holds", s.RootSizeGiB, s.DataSizeGiB, MaxDiskGiB)
	}
	if _, err := Outputs(s.Types); err != nil {
		return err
	}
	return nil
}

// CheckLogin reports ErrNoLogin when neither a key nor a password is set.
func (s Spec) CheckLogin() error {
	if len(s.SSHKeys) == 0 && s.PasswordHash == "" {
		return ErrNoLogin
	}
	return nil
}

func checkSSHKey(k string) error {
	f := strings.Fields(k)
	if len(f) < 2 || strings.ContainsAny(k, "\n\r") {
		return errors.New(`must be one line "TYPE BASE64 [COMMENT]", as in ~/.ssh/id_ed25519.pub`)
	}
	if !slices.Contains(keyTypes, f[0]) {
		return fmt.Errorf("type %q: must be one of %s", f[0], strings.Join(keyTypes, ", "))
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("key data is not base64: %w", err)
	}
	// The blob starts with its own type name, length-prefixed.
	want := append([]byte{0, 0, 0, byte(len(f[0]))}, f[0]...)
	if !bytes.HasPrefix(blob, want) {
		return fmt.Errorf("key data does not hold a %s key", f[0])
	}
	return nil
}

// Config is bootc-image-builder's config.toml.
type Config struct {
	Customizations Customizations `toml:"customizations"`
}

// Customizations is the [customizations] table of a config.toml.
type Customizations struct {
	User        []User       `toml:"user"`
	Filesystem  []Filesystem `toml:"filesystem,omitempty"`
	Disk        *Disk        `toml:"disk,omitempty"`
	Directories []Directory  `toml:"directories,omitempty"`
	Files       []File       `toml:"files,omitempty"`
}

// Directory is one [[customizations.directories]]: a directory that bib
// makes on the disk. bootc disks take them under /etc only.
type Directory struct {
	Path string `toml:"path"`
	// Mode, User and Group left empty keep a directory that exists as it
	// is (osbuild's mkdir with exist_ok).
	Mode          string `toml:"mode,omitempty"`
	User          string `toml:"user,omitempty"`
	Group         string `toml:"group,omitempty"`
	EnsureParents bool   `toml:"ensure_parents"`
}

// File is one [[customizations.files]]: a file that bib writes on the
// disk, and nowhere in an image. bootc disks take them under /etc and
// /root, which bootc keeps across upgrades. bib also copies Data into its
// manifest; see Scrub.
type File struct {
	Path  string `toml:"path"`
	Mode  string `toml:"mode"`
	User  string `toml:"user"`
	Group string `toml:"group"`
	Data  string `toml:"data"`
}

// Disk is [customizations.disk]: the partition table, used when /var gets a
// partition of its own (bootc-image-builder refuses /var as a filesystem
// customization, but not as a partition).
type Disk struct {
	Partitions []Partition `toml:"partitions"`
}

// Partition is one [[customizations.disk.partitions]] holding a filesystem.
type Partition struct {
	Type       string `toml:"type"`
	MinSize    string `toml:"minsize"`
	Mountpoint string `toml:"mountpoint"`
	Label      string `toml:"label"`
	FSType     string `toml:"fs_type"`
}

// User is one [[customizations.user]].
type User struct {
	Name     string   `toml:"name"`
	Password string   `toml:"password,omitempty"`
	Key      string   `toml:"key,omitempty"`
	Groups   []string `toml:"groups"`
}

// Filesystem is one [[customizations.filesystem]].
type Filesystem struct {
	Mountpoint string `toml:"mountpoint"`
	MinSize    string `toml:"minsize"`
}

// Config returns the config.toml contents for a validated Spec.
func (s Spec) Config() Config {
	u := User{Name: s.User, Password: s.PasswordHash, Key: strings.Join(s.SSHKeys, "\n"), Groups: []string{"wheel"}}
	c := Customizations{User: []User{u}}
	if s.DataSizeGiB > 0 {
		c.Disk = &Disk{Partitions: []Partition{
			{Type: "plain", MinSize: gib(s.RootSizeGiB), Mountpoint: "/", Label: "root", FSType: "xfs"},
			{Type: "plain", MinSize: gib(s.DataSizeGiB), Mountpoint: "/var", Label: "var", FSType: "xfs"},
		}}
	} else {
		c.Filesystem = []Filesystem{{Mountpoint: "/", MinSize: gib(s.RootSizeGiB)}}
	}
	return Config{c}
}

func gib(n int) string { return fmt.Sprintf("%d GiB", n) }

// TOML encodes the config.
func (c Config) TOML() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("bib config: %w", err)
	}
	return buf.Bytes(), nil
}
