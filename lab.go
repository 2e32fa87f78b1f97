// The lab: the cluster's disks booted as VMs with qemu inside the engine.

package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/lab"
	"dagger/kafka-bootc/nodes"

	"github.com/distribution/reference"
)

// Where the lab's container finds what the module gives it.
const (
	labDisks      = "/disks"
	labSpec       = "/etc/kafka-bootc-lab/spec.json"
	labIdentity   = "/run/secrets/kafka-bootc-lab/identity"
	labKnownHosts = "/etc/kafka-bootc-lab/known_hosts"
	labClient     = "/run/secrets/kafka-bootc-lab/client.properties"
	labCACert     = "/etc/kafka-bootc-lab/ca.crt"
	labUpgrade    = "/etc/kafka-bootc-lab/upgrade"
	labRun        = "/var/lib/kafka-bootc-lab"
	labBin        = "/usr/local/bin/kafka-bootc-lab"
)

// labPackages are the Alpine packages the lab adds to the cluster's Kafka
// image (apache/kafka is eclipse-temurin's Alpine JRE image, with Kafka's
// tools in /opt/kafka/bin): qemu, its disk tool, dnsmasq, ip and iptables.
var labPackages = []string{"qemu-system-x86_64", "qemu-img", "dnsmasq", "iproute2", "iptables"}

// Lab is the cluster's disks booted as virtual machines with qemu, in one
// privileged container of the engine.
type Lab struct {
	// +private
	Parent *KafkaBootc
	// +private
	Disks *dagger.Directory
	// +private
	Identity *dagger.Secret
	// +private
	KnownHosts *dagger.File
	// +private
	Memory int
	// +private
	Cpus int
	// +private
	Accel string
	// +private
	CaCert *dagger.File
	// +private
	CaKey *dagger.Secret
	// +private
	Image string
	// +private
	Outbound bool
}

// Lab boots the disks that disks wrote as a cluster of virtual machines.
//
// Every node's qcow2 disk boots in qemu, in one privileged container: KVM
// where the engine's /dev/kvm can be used, software emulation (much
// slower) where it cannot, and the output says which. The VMs share a
// private network on which dnsmasq gives each its address by DHCP and
// answers for every node's hostname, so the nodes find each other as on
// the user's own network. The disks are never written: each VM writes to
// an overlay that goes with the lab.
//
// For example "lab --disks ./disk-images --identity
// file:$HOME/.ssh/id_ed25519 smoke". It checks its arguments and the
// disks; the function that follows boots them.
func (m *KafkaBootc) Lab(
	ctx context.Context,
	// The directory that disks wrote (<node>/qcow2/disk.qcow2 for every
	// node).
	disks *dagger.Directory,
	// Private SSH key of the disk user, for example
	// file:$HOME/.ssh/id_ed25519 (no passphrase): the lab logs in to every
	// node to check it.
	identity *dagger.Secret,
	// known_hosts lines for the nodes, by name or hostname. Without it, the
	// keys the nodes make on their first boot are accepted.
	// +optional
	knownHosts *dagger.File,
	// Memory of every VM in MiB, instead of the cluster's (a laptop
	// cannot give six VMs their production sizes). Below a node's Kafka
	// heap plus 512 MiB, the lab warns that Kafka may not start.
	// +optional
	memory int,
	// CPUs of every VM, instead of the cluster's.
	// +optional
	cpus int,
	// qemu's accelerator: auto (KVM where /dev/kvm can be used, else
	// software emulation), kvm or tcg.
	// +default="auto"
	accel string,
	// The cluster CA's certificate, for smoke's Kafka steps: it issues a
	// client for the admin user. Without it, those steps are skipped.
	// +optional
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key.
	// +optional
	caKey *dagger.Secret,
	// Route the VMs' traffic beyond the lab, masqueraded, and answer
	// their DNS for other names: what they need to reach a registry, as a
	// rollout does. Without it, the lab's network reaches nothing else.
	// smoke --upgrade turns it on.
	// +optional
	outbound bool,
	// The image the lab runs in, for mirrors and air-gapped sites: it
	// must hold qemu-system-x86_64, qemu-img, dnsmasq, ip and iptables, and for
	// smoke's Kafka steps Kafka's tools in /opt/kafka/bin with a JRE. By
	// default, the cluster's Kafka image with Alpine's qemu, dnsmasq,
	// iproute2 and iptables packages added.
	// +optional
	image string,
) (*Lab, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	if accel != lab.AccelAuto && accel != lab.AccelKVM && accel != lab.AccelTCG {
		return nil, fmt.Errorf("accel %q: must be %s, %s or %s", accel, lab.AccelAuto, lab.AccelKVM, lab.AccelTCG)
	}
	if (caCert == nil) != (caKey == nil) {
		return nil, errors.New("ca cert: give --ca-cert and --ca-key together, or neither (smoke then skips the Kafka steps)")
	}
	if caCert != nil && !c.TLS {
		return nil, errors.New("ca cert: the cluster is built with security: plaintext, whose listeners take no certificates; leave out --ca-cert and --ca-key")
	}
	if image != "" {
		if _, err := reference.ParseNormalizedNamed(image); err != nil {
			return nil, fmt.Errorf("image %q: not an image reference (%v)", image, err)
		}
	}
	found, err := disks.Glob(ctx, "*/"+lab.DiskPath)
	if err != nil {
		return nil, fmt.Errorf("disks: %w", err)
	}
	l := &Lab{Parent: m, Disks: disks, Identity: identity, KnownHosts: knownHosts, Memory: memory, Cpus: cpus, Accel: accel, CaCert: caCert, CaKey: caKey, Image: image, Outbound: outbound}
	if _, err := l.plan(c, found); err != nil {
		return nil, err
	}
	return l, nil
}

// plan lays the lab out; found lists the disks that are there, relative
// to the disks directory. The accelerator is checked here, chosen in the
// container.
func (l *Lab) plan(c *nodes.Cluster, found []string) (*lab.Plan, error) {
	have := map[string]bool{}
	for _, f := range found {
		have[path.Join(labDisks, f)] = true
	}
	// The lab's container chooses between KVM and TCG; here only the
	// value is checked.
	accel := l.Accel
	if accel == lab.AccelAuto || accel == lab.AccelKVM {
		accel = lab.AccelTCG
	}
	return lab.NewPlan(c, lab.Options{Disks: labDisks, RunDir: labRun, MemoryMiB: l.Memory, CPUs: l.Cpus, Accel: accel,
		DiskExists: func(p string) bool { return have[p] }})
}

// Smoke boots every node and proves the cluster works, step by step.
//
// It boots every node, waits until each answers over SSH as its own
// hostname, checks that every node reaches every other by its hostname,
// and on bootc disks waits until health (the same checks as running ...
// health) says the cluster is healthy. With --ca-cert and --ca-key given
// to lab, it then creates a topic with replication factor 3, writes
// records and reads them back over mutual TLS as the admin user, checks
// that a client of another CA is refused, reboots a broker and reads the
// records again. It prints a table of the steps and their seconds, and
// fails at the first step that fails, with the last lines of the node's
// serial console. With --upgrade, it ends by rolling the lab onto those
// images with rollout and reading the records back. Steps that need a real
// Kafka are reported as skipped on disks that are not bootc systems.
//
// Never cached: it boots machines.
// +cache="never"
func (l *Lab) Smoke(
	ctx context.Context,
	// Seconds a VM may take to answer over SSH.
	// +default=900
	bootTimeout int,
	// Seconds the cluster may take to be healthy, after the boot and after
	// the reboot.
	// +default=900
	healthTimeout int,
	// Records to write and read back.
	// +default=100
	records int,
	// Images to roll the lab onto at the end, as build-all printed them
	// (text or --format json): rollout moves every node onto its image, with
	// its health gates, and the records must still be there. The VMs then
	// reach the registry through the lab (as with --outbound); each node
	// logs in with its own pull secret.
	// +optional
	upgrade string,
) (string, error) {
	if bootTimeout < 1 || healthTimeout < 1 {
		return "", errors.New("boot timeout, health timeout: must be at least 1 second")
	}
	if records < 1 || records > 100000 {
		return "", fmt.Errorf("records %d: must be from 1 to 100000", records)
	}
	if _, err := health.ParsePublished(upgrade); err != nil {
		return "", fmt.Errorf("upgrade: %w", err)
	}
	ctr, err := l.container(ctx)
	if err != nil {
		return "", err
	}
	args := append(l.args("smoke"), "-boot-timeout", strconv.Itoa(bootTimeout)+"s",
		"-health-timeout", strconv.Itoa(healthTimeout)+"s", "-records", strconv.Itoa(records))
	if l.CaCert != nil {
		args = append(args, "-client-config", labClient, "-ca-cert", labCACert)
	}
	if upgrade != "" {
		ctr = ctr.WithNewFile(labUpgrade, upgrade)
		args = append(args, "-upgrade", labUpgrade)
	}
	run := ctr.
		WithEnvVariable("KAFKA_BOOTC_LAB_RUN", time.Now().Format(time.RFC3339Nano)).
		WithExec(args, dagger.ContainerWithExecOpts{InsecureRootCapabilities: true, Expect: dagger.ReturnTypeAny})
	code, err := run.ExitCode(ctx)
	if err != nil {
		return "", err
	}
	table, err := run.Stdout(ctx)
	if err != nil {
		return "", err
	}
	if code != 0 {
		log, _ := run.Stderr(ctx)
		return "", fmt.Errorf("%s%s", table, tail(log, 40))
	}
	return table, nil
}

// tail is the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// Service boots the lab and keeps it running, its ports forwarded.
//
// Run it with "up": each node's SSH is forwarded from port 2200+n (n
// from 1, brokers first, as hosts prints), and in tls mode the brokers'
// listener port reaches every broker, by the name the client asks for
// (TLS SNI, untouched: mutual TLS is between the client and the broker).
// Kafka clients follow the brokers' advertised names: add the line that
// hosts prints to /etc/hosts. For example "lab --disks ./disk-images
// --identity file:$HOME/.ssh/id_ed25519 service up".
//
// Kept for one session: it starts from the Kafka image's tag.
// +cache="session"
func (l *Lab) Service(ctx context.Context) (*dagger.Service, error) {
	c, err := l.Parent.cluster()
	if err != nil {
		return nil, err
	}
	p, err := l.plan(c, l.allDisks(c))
	if err != nil {
		return nil, err
	}
	ctr, err := l.container(ctx)
	if err != nil {
		return nil, err
	}
	for _, vm := range p.VMs {
		ctr = ctr.WithExposedPort(vm.SSHPort)
	}
	if p.TLS {
		ctr = ctr.WithExposedPort(p.KafkaPort)
	}
	return ctr.AsService(dagger.ContainerAsServiceOpts{Args: l.args("up"), InsecureRootCapabilities: true}), nil
}

// Hosts prints how to reach the lab that service runs.
//
// It prints where each node's SSH is forwarded on your machine (NODE=
// 127.0.0.1:PORT), and the /etc/hosts line for Kafka clients.
//
// For example "lab --disks ./disk-images --identity
// file:$HOME/.ssh/id_ed25519 hosts". It depends on the cluster only.
func (l *Lab) Hosts() (string, error) {
	c, err := l.Parent.cluster()
	if err != nil {
		return "", err
	}
	p, err := l.plan(c, l.allDisks(c))
	if err != nil {
		return "", err
	}
	out := "# each node's SSH, which lab service up forwards (ssh -p PORT USER@127.0.0.1)\n" + p.Addresses("127.0.0.1")
	if p.TLS {
		out += fmt.Sprintf("# /etc/hosts, for Kafka clients of the brokers' port %d\n%s", p.KafkaPort, p.HostsLines("127.0.0.1"))
	}
	return out, nil
}

// allDisks lists every node's disk as there: Lab checked them.
func (l *Lab) allDisks(c *nodes.Cluster) []string {
	var found []string
	for _, n := range c.Nodes {
		found = append(found, path.Join(n.Name, lab.DiskPath))
	}
	return found
}

// args is kafka-bootc-lab's command line for verb.
func (l *Lab) args(verb string) []string {
	args := []string{labBin, verb, "-spec", labSpec, "-disks", labDisks, "-run", labRun, "-identity", labIdentity, "-accel", l.Accel}
	if l.Memory != 0 {
		args = append(args, "-memory", strconv.Itoa(l.Memory))
	}
	if l.Cpus != 0 {
		args = append(args, "-cpus", strconv.Itoa(l.Cpus))
	}
	if l.KnownHosts != nil {
		args = append(args, "-known-hosts", labKnownHosts)
	}
	if l.Outbound {
		args = append(args, "-outbound")
	}
	return args
}

// container is the lab's: the cluster's Kafka image, for Kafka's tools and
// its JRE, with qemu, dnsmasq, ip and iptables added (or --image), kafka-bootc-lab built from
// this module, and what the lab was given.
func (l *Lab) container(ctx context.Context) (*dagger.Container, error) {
	m := l.Parent
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	bin := m.pull(goImage).
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("kafka-bootc-go-mod")).
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("kafka-bootc-go-build")).
		WithDirectory("/src", dag.CurrentModule().Source(), dagger.ContainerWithDirectoryOpts{Include: lab.CommandSource}).
		WithWorkdir("/src").
		WithEnvVariable("CGO_ENABLED", "0").
		WithExec([]string{"go", "build", "-trimpath", "-o", "/out/kafka-bootc-lab", "./cmd/kafka-bootc-lab"}).
		File("/out/kafka-bootc-lab")
	ctr := m.pull(c.KafkaImage).
		WithUser("root").
		WithExec(append([]string{"apk", "add", "--no-cache"}, labPackages...))
	if l.Image != "" {
		ctr = m.pull(l.Image).WithUser("root")
	}
	ctr = ctr.
		WithFile(labBin, bin).
		WithNewFile(labSpec, m.Spec).
		WithMountedDirectory(labDisks, l.Disks).
		WithMountedSecret(labIdentity, l.Identity)
	if l.KnownHosts != nil {
		ctr = ctr.WithFile(labKnownHosts, l.KnownHosts)
	}
	if l.CaCert != nil {
		ca, err := loadCA(ctx, l.CaCert, l.CaKey)
		if err != nil {
			return nil, err
		}
		cert, key, err := ca.Issue(nodes.ClientIdentity(c.AdminUser, 1), time.Now())
		if err != nil {
			return nil, err
		}
		for _, f := range c.ClientFiles(c.AdminUser, cert, key, ca.TrustPEM) {
			if f.Path == "client.properties" {
				ctr = ctr.WithMountedSecret(labClient, secretOf("kafka-bootc-lab-client", f.Content))
			}
		}
		ctr = ctr.WithFile(labCACert, l.CaCert)
	}
	return ctr, nil
}
