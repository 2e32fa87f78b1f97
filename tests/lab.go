// The check of the lab, on stand-in disks that boot without KVM.

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"dagger/tests/internal/dagger"
)

// labUser is the disk user of the cluster under test (the default).
const labUser = "kafka"

// Lab boots stand-in disks (bootdisk/make-disk.sh: busybox, an sshd, an
// address by DHCP, no bootc and no Kafka) with kafka-bootc's lab, in
// software emulation: smoke on a 1+1 and on a 3+3 cluster must boot every
// VM, reach each over SSH and every node from every other by name, report
// the Kafka steps as skipped and print its table; a disk that never boots
// must fail smoke with its console; and service must forward a node's
// SSH.
// +cache="never"
func (m *Tests) Lab(ctx context.Context) error {
	keys, identity, err := sshKeys(ctx)
	if err != nil {
		return err
	}
	image, err := labImage(ctx)
	if err != nil {
		return err
	}
	for _, size := range []int{1, 3} {
		c := labCluster(size)
		disks, known := standInDisks(keys, size, "")
		out, err := c.Lab(disks, identity, dagger.KafkaBootcLabOpts{KnownHosts: known, Memory: 256, Cpus: 1, Accel: "tcg", Image: image}).
			Smoke(ctx, dagger.KafkaBootcLabSmokeOpts{BootTimeout: 600})
		if err != nil {
			return fmt.Errorf("lab smoke on %d+%d stand-ins: %w", size, size, err)
		}
		pairs := fmt.Sprintf("(%d pairs)", 2*size*(2*size-1))
		for _, want := range []string{"smoke: passed", "stand-ins: no node is a bootc system", pairs, "health", "skipped"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("lab smoke on %d+%d stand-ins: the table lacks %q:\n%s", size, size, want, out)
			}
		}
	}

	disks, known := standInDisks(keys, 1, "console=ttyS0 root=/dev/vdz")
	_, err = labCluster(1).Lab(disks, identity, dagger.KafkaBootcLabOpts{KnownHosts: known, Memory: 256, Cpus: 1, Accel: "tcg", Image: image}).
		Smoke(ctx, dagger.KafkaBootcLabSmokeOpts{BootTimeout: 60})
	if err == nil || !strings.Contains(err.Error(), "kafka-controller-1") || !strings.Contains(err.Error(), "cannot mount /dev/vdz") {
		return fmt.Errorf("lab smoke on a controller disk that cannot boot: want its console in the error, got %v", err)
	}

	disks, known = standInDisks(keys, 1, "")
	svc := labCluster(1).Lab(disks, identity, dagger.KafkaBootcLabOpts{KnownHosts: known, Memory: 256, Cpus: 1, Accel: "tcg", Image: image}).Service()
	hostKey, err := disks.File("kafka-broker-1/qcow2/disk.qcow2.hostkey.pub").Contents(ctx)
	if err != nil {
		return err
	}
	out, err := dag.Container().From(toolsImage).
		WithExec([]string{"sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null"}).
		WithMountedSecret("/root/id", identity).
		WithNewFile("/root/known_hosts", "[lab]:2201 "+hostKey).
		WithServiceBinding("lab", svc).
		WithEnvVariable("RUN", nonce()).
		WithExec([]string{"sh", "-c", `for i in $(seq 1 120); do
  ssh -n -i /root/id -p 2201 -o BatchMode=yes -o UserKnownHostsFile=/root/known_hosts -o ConnectTimeout=5 ` + labUser + `@lab cat /etc/hostname && exit 0
  sleep 5
done; exit 1`}).
		Stdout(ctx)
	if err != nil {
		return fmt.Errorf("lab service: SSH to kafka-broker-1 on port 2201: %w", err)
	}
	if strings.TrimSpace(out) != "kafka-broker-1" {
		return fmt.Errorf("lab service: port 2201 answers as %q, not kafka-broker-1", out)
	}
	return nil
}

// labCluster is a cluster of size brokers and size controllers.
func labCluster(size int) *dagger.KafkaBootc {
	file := fmt.Sprintf("version: 1\nbrokers:\n  count: %d\ncontrollers:\n  count: %d\n", size, size)
	return dag.KafkaBootc(dagger.KafkaBootcOpts{
		Cluster:        dag.Directory().WithNewFile("kafka-cluster.yaml", file).File("kafka-cluster.yaml"),
		JmxExporterJar: dag.Directory().WithNewFile("jmx.jar", jmxJar).File("jmx.jar"),
	})
}

// standInDisks makes a stand-in disk for every node of labCluster(size),
// laid out as disks writes them, and known_hosts lines for their host
// keys by node name. kcmdline, when set, is the last controller's kernel
// command line instead of the default.
func standInDisks(keys *dagger.Directory, size int, kcmdline string) (*dagger.Directory, *dagger.File) {
	var script strings.Builder
	script.WriteString("set -eu\nmkdir -p /out\n: > /out/known_hosts\n")
	for _, role := range []string{"broker", "controller"} {
		for i := 1; i <= size; i++ {
			name := fmt.Sprintf("kafka-%s-%d", role, i)
			env := ""
			if kcmdline != "" && role == "controller" && i == size {
				env = fmt.Sprintf("KCMDLINE=%q ", kcmdline)
			}
			fmt.Fprintf(&script, "%sSSH_USER=%s bash /bootdisk/make-disk.sh %s %s /keys/id_ed25519.pub /out/%s/qcow2/disk.qcow2\n", env, labUser, name, name, name)
			fmt.Fprintf(&script, "echo \"%s $(cat /out/%s/qcow2/disk.qcow2.hostkey.pub)\" >> /out/known_hosts\n", name, name)
		}
	}
	out := dag.Container().From(toolsImage).
		WithExec([]string{"sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-utils cpio e2fsprogs xz-utils libdevmapper1.02.1 liblzma5 >/dev/null"}).
		WithMountedCache("/var/cache/bootdisk", dag.CacheVolume("kafka-bootc-e2e-bootdisk")).
		WithEnvVariable("CACHE", "/var/cache/bootdisk").
		WithDirectory("/bootdisk", dag.CurrentModule().Source().Directory("bootdisk")).
		WithDirectory("/keys", keys).
		WithExec([]string{"bash", "-c", script.String()}).
		Directory("/out")
	return out.WithoutFile("known_hosts"), out.File("known_hosts")
}

// labImage publishes an image for lab --image to the local engine's
// registry: Debian's qemu, dnsmasq, iproute2 and iptables. The default lab image
// adds Alpine's packages to the cluster's Kafka image, which the local
// engine's stand-in for apache/kafka is not.
func labImage(ctx context.Context) (string, error) {
	ref, err := dag.Container().From(toolsImage).
		WithExec([]string{"sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 qemu-utils dnsmasq-base iproute2 iptables >/dev/null"}).
		Publish(ctx, "127.0.0.1:5000/e2e/lab:"+nonce())
	if err != nil {
		return "", errors.Join(errors.New("publishing the lab image to the local engine's registry"), err)
	}
	return ref, nil
}
