package containertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry runs Debian's docker-registry (distribution) on a free loopback
// port, over plain HTTP, and returns its host:port and the directory where
// it keeps blobs and manifests.
func Registry(t testing.TB) (addr, root string) {
	t.Helper()
	return serve(t, "")
}

// AuthRegistry is a Registry that lets in one user, with basic
// authentication (its htpasswd), and no one else.
func AuthRegistry(t testing.TB, user, password string) (addr string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(file, fmt.Appendf(nil, "%s:%s\n", user, hash), 0o644)
	addr, _ = serve(t, fmt.Sprintf("auth:\n  htpasswd:\n    realm: kafka-bootc\n    path: %s\n", file))
	return addr
}

func serve(t testing.TB, extra string) (addr, root string) {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("skipped: docker-registry is not installed (.ci/run installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	root = t.TempDir()
	conf := filepath.Join(root, "config.yml")
	os.WriteFile(conf, fmt.Appendf(nil, "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n%s", root, addr, extra), 0o644)
	cmd := exec.Command(bin, "serve", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, root
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("docker-registry did not listen on %s", addr)
	return "", ""
}
