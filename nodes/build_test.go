package nodes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dagger/kafka-bootc/internal/containertest"
)

// TestContainerfilesBuildWithBuildah builds the rendered tree of a role and
// one of its nodes with buildah, the way the README says plain podman can,
// on a stand-in base image: busybox, with dnf, firewall-offline-cmd,
// systemctl and bootc replaced by scripts that log their arguments. It
// checks the steps ran in the plan's order and that the files, the
// bound-image symlinks and the labels are in the node image.
func TestContainerfilesBuildWithBuildah(t *testing.T) {
	store := containertest.New(t, "buildah", "busybox")
	dir, sh := store.Dir, store.Sh

	s := exampleSpec()
	s.Brokers, s.Controllers = 1, 1
	// Without the JMX exporter: its download needs the network
	// (TestDownloadChecksItsDigest runs that step).
	s.MetricsPort = 0
	tree, err := plan(t, s).Tree()
	if err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(dir, "rendered")
	if err := WriteTree(rendered, tree); err != nil {
		t.Fatal(err)
	}

	fake := `#!/bin/sh
echo "$(basename "$0") $*" >> /build.log
`
	if err := os.WriteFile(filepath.Join(dir, "fake"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	sh(`c=$(buildah from scratch)
buildah copy "$c" "$(command -v busybox)" /bin/busybox >/dev/null
buildah run "$c" -- /bin/busybox --install -s /bin
for cmd in dnf firewall-offline-cmd systemctl bootc; do buildah copy --chmod 0755 "$c" ` + dir + `/fake /usr/bin/$cmd >/dev/null; done
buildah commit -q "$c" localhost/fake-bootc >/dev/null`)

	sh(`cd ` + rendered + `/kafka-broker && buildah build -q --build-arg BASE=localhost/fake-bootc -t localhost/kafka-broker . >/dev/null
cd ` + rendered + `/kafka-broker-1 && buildah build -q -t localhost/kafka-broker-1 . >/dev/null`)

	// Read the image's own files: buildah run would show the runtime's
	// /etc/hostname instead.
	out := sh(`c=$(buildah from localhost/kafka-broker-1)
m=$(buildah mount "$c")
cat "$m/build.log"
echo ---
readlink "$m/usr/lib/bootc/bound-images.d/kafka-broker.container"
echo ---
cat "$m/etc/hostname" "$m/usr/share/containers/systemd/kafka-broker.container.d/10-node.conf"
echo ---
buildah inspect --format '{{index .OCIv1.Config.Labels "containers.bootc"}} {{index .OCIv1.Config.Labels "org.opencontainers.image.title"}}' "$c"`)
	parts := strings.Split(out, "---\n")
	if len(parts) != 4 {
		t.Fatalf("output:\n%s", out)
	}
	wantLog := "dnf -y install firewalld\nfirewall-offline-cmd --add-port=9092/tcp --add-port=9100/tcp\n" +
		"systemctl enable firewalld.service\nsystemctl mask bootc-fetch-apply-updates.timer\nbootc container lint\n"
	if parts[0] != wantLog {
		t.Errorf("build steps:\n%s\nwant:\n%s", parts[0], wantLog)
	}
	if strings.TrimSpace(parts[1]) != "/usr/share/containers/systemd/kafka-broker.container" {
		t.Errorf("bound-image link: %q", parts[1])
	}
	if !strings.HasPrefix(parts[2], "kafka-broker-1\n[Container]\nEnvironment=KAFKA_ADVERTISED_LISTENERS=") {
		t.Errorf("node files:\n%s", parts[2])
	}
	if strings.TrimSpace(parts[3]) != "1 kafka-broker-1" {
		t.Errorf("labels: %q", parts[3])
	}
}
