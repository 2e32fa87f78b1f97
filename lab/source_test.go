package lab

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// included reports whether a file of the module is in CommandSource, as
// Dagger's include patterns match: "**/" matches any directory, the
// module's root among them. Other forms are refused, so that a new kind of
// pattern is matched here before it is used.
func included(t *testing.T, rel string) bool {
	t.Helper()
	for _, p := range CommandSource {
		switch {
		case strings.HasPrefix(p, "**/"):
			rest := strings.TrimPrefix(p, "**/")
			if strings.ContainsAny(rest, "/*?[") && !strings.HasPrefix(rest, "*.") {
				t.Fatalf("pattern %q: only **/*.ext and exact paths are understood here", p)
			}
			if ok, _ := path.Match(rest, path.Base(rel)); ok {
				return true
			}
		case strings.ContainsAny(p, "*?["):
			t.Fatalf("pattern %q: only **/*.ext and exact paths are understood here", p)
		case p == rel:
			return true
		}
	}
	return false
}

// TestTheLabCommandBuildsFromExactlyTheFilesTheLabCopies: the lab
// function builds kafka-bootc-lab from the files that CommandSource
// includes and no others; a package that embeds a file the list lacks
// fails here, not on a user's engine.
func TestTheLabCommandBuildsFromExactlyTheFilesTheLabCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: builds the lab command")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !included(t, rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(t.TempDir(), "kafka-bootc-lab"), "./cmd/kafka-bootc-lab")
	cmd.Dir = dst
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kafka-bootc-lab does not build from the files the lab copies (lab.CommandSource): %v\n%s", err, out)
	}
}
