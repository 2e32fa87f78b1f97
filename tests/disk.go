// The check of a disk.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"dagger/tests/internal/dagger"
)

// Disk makes a cluster CA with ca, builds the controller's disk with
// bootc-image-builder and a node certificate from that CA, and checks it
// with qemu-img: a qcow2 of at least the 20 GiB root size, with bib's
// manifest and the VM scripts beside it, and no private key anywhere but
// inside the disk.
// +cache="never"
func (m *Tests) Disk(ctx context.Context) error {
	const node = "kafka-controller-1"
	kb := cluster("e2e", clusterOpts{})
	// ca is never cached: each evaluation makes a new CA, so take both
	// files from one evaluation, as "ca -o ./ca" does.
	caPath, err := kb.Ca().Export(ctx, "/tmp/ca-"+nonce())
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	caCert, err := os.ReadFile(filepath.Join(caPath, "ca.crt"))
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	caKey, err := os.ReadFile(filepath.Join(caPath, "ca.key"))
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	disks := kb.Disk(node, dagger.KafkaBootcDiskOpts{
		Password: dag.SetSecret("e2e-password-hash", passwordHash),
		CaCert:   dag.Directory().WithNewFile("ca.crt", string(caCert)).File("ca.crt"),
		CaKey:    dag.SetSecret("e2e-ca-key-"+nonce(), string(caKey)),
	})
	for _, p := range []string{node + "/manifest-qcow2.json", "start-vms.sh", "remove-vms.sh"} {
		if _, err := disks.File(p).Size(ctx); err != nil {
			return fmt.Errorf("disk: no %s: %w", p, err)
		}
	}
	// The key's PEM header, as it is and base64-encoded from the start of
	// a file, as bib's manifests hold inline files.
	leaks, err := dag.Container().From(toolsImage).
		WithMountedDirectory("/disks", disks).
		WithExec([]string{"sh", "-c", `grep -rlsI -e "PRIVATE KEY" -e "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t" --exclude=disk.qcow2 /disks || true`}).
		Stdout(ctx)
	if err != nil {
		return fmt.Errorf("disk: looking for keys: %w", err)
	}
	if strings.TrimSpace(leaks) != "" {
		return fmt.Errorf("disk: private keys outside the disk image: %s", leaks)
	}
	info, err := dag.Container().From("quay.io/centos/centos:stream9").
		WithExec([]string{"dnf", "-y", "install", "qemu-img"}).
		WithMountedDirectory("/disks", disks).
		WithExec([]string{"qemu-img", "info", "--output=json", "/disks/" + node + "/qcow2/disk.qcow2"}).
		Stdout(ctx)
	if err != nil {
		return fmt.Errorf("disk: qemu-img info: %w", err)
	}
	var img struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal([]byte(info), &img); err != nil {
		return fmt.Errorf("disk: qemu-img info: %w\n%s", err, info)
	}
	if img.Format != "qcow2" || img.VirtualSize < 20<<30 {
		return fmt.Errorf("disk: %s is %s of %d bytes, want qcow2 of at least 20 GiB", node, img.Format, img.VirtualSize)
	}
	return nil
}
