// Package containertest gives tests a private container storage for podman
// and buildah, so that they never see or change the machine's images.
package containertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Storage is a private container storage in a test's temporary directory.
type Storage struct {
	t testing.TB
	// Dir is the test's temporary directory; the storage lives under it.
	Dir string
	// Env is the environment scripts run with; tests may add to it.
	Env []string
}

// New skips the test, saying why, unless the tools are installed and it
// runs as root, and returns a fresh storage. It uses vfs, which works on
// any filesystem, and buildah's chroot isolation, which works without a
// container runtime's privileges.
func New(t testing.TB, tools ...string) *Storage {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed (.ci/run installs it)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: podman and buildah need root here")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "storage.conf")
	data := "[storage]\ndriver = \"vfs\"\ngraphroot = \"" + dir + "/graph\"\nrunroot = \"" + dir + "/run\"\n"
	if err := os.WriteFile(conf, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Storage{t: t, Dir: dir, Env: append(os.Environ(), "CONTAINERS_STORAGE_CONF="+conf, "BUILDAH_ISOLATION=chroot")}
}

// Command is "sh -euc script" against the storage.
func (s *Storage) Command(script string) *exec.Cmd {
	cmd := exec.Command("sh", "-euc", script)
	cmd.Env = s.Env
	return cmd
}

// Sh runs a script against the storage and fails the test if it fails.
func (s *Storage) Sh(script string) string {
	s.t.Helper()
	out, err := s.Command(script).CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s\n%v\n%s", script, err, out)
	}
	return string(out)
}
