// Package bootdisktest makes the lab's test disks: tiny disks that boot
// under qemu without KVM, with SSH for a given key, the given hostname,
// an address by DHCP and a line of text on port 9092 (make-disk.sh says
// what they are, and are not): tests/bootdisk/make-disk.sh.
package bootdisktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Require skips the test where the lab cannot run: not root, or without
// qemu, dnsmasq or ip.
func Require(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("skipped: the lab makes a bridge and taps, which needs root")
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "dnsmasq", "ip", "mke2fs", "cpio"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed (Debian's qemu-system-x86, qemu-utils, dnsmasq-base, iproute2, e2fsprogs, cpio)", tool)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("skipped: no /dev/net/tun for the VMs' taps")
	}
}

// Disk makes a disk for a node at out: the node's hostname in
// /etc/hostname, pubKey (authorized_keys format) for user core. extra
// sets make-disk.sh's environment, KCMDLINE for one.
func Disk(t testing.TB, name, hostname, pubKey, out string, extra ...string) {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	// The tests module makes the same disks in the engine.
	script := filepath.Join(filepath.Dir(self), "..", "..", "tests", "bootdisk", "make-disk.sh")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script, name, hostname, pubKey, out)
	// The Debian packages it boots are downloaded once per machine.
	cmd.Env = append(os.Environ(), append([]string{"CACHE=" + filepath.Join(os.TempDir(), "kafka-bootc-bootdisk-cache")}, extra...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-disk.sh %s: %v\n%s", name, err, out)
	}
}
