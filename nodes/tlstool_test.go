package nodes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tlsToolIn writes the TLS tool with its directory moved to a temporary
// one that holds a node's files, and returns the tool and the directory.
func tlsToolIn(t *testing.T) (tool, dir string) {
	t.Helper()
	dir = t.TempDir()
	tool = filepath.Join(t.TempDir(), "tls")
	script := strings.Replace(tlsTool, "dir="+hostTLSDir+"\n", "dir="+dir+"\n", 1)
	if script == tlsTool {
		t.Fatal("the tool does not set its directory where the test expects it")
	}
	os.WriteFile(tool, []byte(script), 0o755)
	os.WriteFile(filepath.Join(dir, NodePEMFile), []byte(oldPEM), 0o400)
	os.WriteFile(filepath.Join(dir, CACertFile), []byte("-----BEGIN CERTIFICATE-----\nold CA\n"), 0o644)
	return tool, dir
}

const (
	oldPEM = "-----BEGIN PRIVATE KEY-----\nold key\n-----BEGIN CERTIFICATE-----\nold\n"
	newPEM = "-----BEGIN PRIVATE KEY-----\nnew key\n-----BEGIN CERTIFICATE-----\nnew\n"
)

// shells are the shells the tool is run with: the one of this machine and
// busybox's, where installed; a node's /bin/sh is bash.
func shells(t *testing.T) []string {
	var out []string
	for _, sh := range []string{"sh", "bash", "busybox"} {
		if _, err := exec.LookPath(sh); err == nil {
			out = append(out, sh)
		}
	}
	if len(out) == 0 {
		t.Skip("skipped: no shell")
	}
	return out
}

func runTool(sh, tool, stdin string, args ...string) (string, error) {
	argv := append([]string{tool}, args...)
	if sh == "busybox" {
		argv = append([]string{"sh"}, argv...)
	}
	cmd := exec.Command(sh, argv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func fileIs(t *testing.T, path, want string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", filepath.Base(path), got, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != mode {
		t.Errorf("%s has mode %o, want %o", filepath.Base(path), fi.Mode().Perm(), mode)
	}
}

// TestTheTLSToolInstallsKeepsAndRestores: a new node.pem from standard
// input replaces the old one, root-only, which stays as node.pem.previous;
// restore puts it back.
func TestTheTLSToolInstallsKeepsAndRestores(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(sh, func(t *testing.T) {
			tool, dir := tlsToolIn(t)
			node := filepath.Join(dir, NodePEMFile)
			if out, err := runTool(sh, tool, newPEM, "install", NodePEMFile); err != nil {
				t.Fatalf("install: %v: %s", err, out)
			}
			fileIs(t, node, newPEM, 0o400)
			fileIs(t, node+".previous", oldPEM, 0o400)
			if out, err := runTool(sh, tool, "", "restore", NodePEMFile); err != nil {
				t.Fatalf("restore: %v: %s", err, out)
			}
			fileIs(t, node, oldPEM, 0o400)

			bundle := "-----BEGIN CERTIFICATE-----\nold CA\n-----BEGIN CERTIFICATE-----\nnew CA\n"
			if out, err := runTool(sh, tool, bundle, "install", CACertFile); err != nil {
				t.Fatalf("install ca.crt: %v: %s", err, out)
			}
			fileIs(t, filepath.Join(dir, CACertFile), bundle, 0o644)
			if out, err := runTool(sh, tool, "", "show", CACertFile); err != nil || out != bundle {
				t.Errorf("show ca.crt: %v: %q", err, out)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 4 {
				t.Errorf("the directory holds %d files, want node.pem, ca.crt and their previous ones: %v", len(entries), entries)
			}
		})
	}
}

// TestTheTLSToolRefusesWhatIsNotAPair: input without a certificate, or a
// node.pem without a key, changes nothing and leaves no temporary file;
// the tool names only its own files, and shows only the public one.
func TestTheTLSToolRefusesWhatIsNotAPair(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(sh, func(t *testing.T) {
			tool, dir := tlsToolIn(t)
			for _, tc := range []struct {
				stdin string
				args  []string
				want  string
			}{
				{"", []string{"install", NodePEMFile}, "the new node.pem holds no certificate: nothing changed"},
				{"-----BEGIN CERTIFICATE-----\nx\n", []string{"install", NodePEMFile}, "the new node.pem holds no private key: nothing changed"},
				{"junk", []string{"install", CACertFile}, "the new ca.crt holds no certificate: nothing changed"},
				{newPEM, []string{"install", "../../etc/shadow"}, "not a file this tool manages"},
				{"", []string{"show", NodePEMFile}, "show: only ca.crt, which is public"},
				{"", []string{"restore", NodePEMFile}, "no previous node.pem to restore: nothing changed"},
				{"", []string{"install"}, "usage:"},
			} {
				out, err := runTool(sh, tool, tc.stdin, tc.args...)
				if err == nil || !strings.Contains(out, tc.want) {
					t.Errorf("tls %v: %v: %q, want an error with %q", tc.args, err, out, tc.want)
				}
			}
			fileIs(t, filepath.Join(dir, NodePEMFile), oldPEM, 0o400)
			if entries, _ := os.ReadDir(dir); len(entries) != 2 {
				t.Errorf("the directory holds %v after refusals, want node.pem and ca.crt alone", entries)
			}
		})
	}
}

func TestTheTLSToolPassesShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("skipped: shellcheck is not installed")
	}
	file := filepath.Join(t.TempDir(), "tls")
	os.WriteFile(file, []byte(tlsTool), 0o755)
	if out, err := exec.Command(sc, file).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
