// Command kafka-bootc-lab runs the lab inside its container: the lab
// function of the kafka-bootc module starts it, privileged, with the
// disks, the cluster's description and the SSH key mounted.
//
//	kafka-bootc-lab smoke -spec spec.json -disks DIR -identity KEY ...
//	kafka-bootc-lab up    -spec spec.json -disks DIR -identity KEY ...
//
// smoke boots every node, runs the smoke test's steps, prints their table
// and exits 1 when a step failed. up boots every node and forwards each
// node's SSH, and the brokers' TLS listener by name, until it is stopped.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/lab"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafka-bootc-lab:", err)
		os.Exit(1)
	}
}

type config struct {
	spec, identity, knownHosts, clientConfig, caCert, kafkaBin, listen, upgrade string
	opts                                                                        lab.Options
	bootTimeout, healthTimeout                                                  time.Duration
	records                                                                     int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "smoke" && args[0] != "up") {
		return errors.New("usage: kafka-bootc-lab smoke|up -spec FILE -disks DIR -identity FILE [flags]")
	}
	verb := args[0]
	var cf config
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cf.spec, "spec", "", "the cluster's description, as JSON (nodes.Spec)")
	fs.StringVar(&cf.opts.Disks, "disks", "", "the directory that disks wrote")
	fs.StringVar(&cf.opts.RunDir, "run", "/var/lib/kafka-bootc-lab", "where the overlays and console logs go")
	fs.StringVar(&cf.identity, "identity", "", "the disk user's private SSH key")
	fs.StringVar(&cf.knownHosts, "known-hosts", "", "the nodes' host keys, lines for node names; without it, the keys of a first boot are accepted")
	fs.IntVar(&cf.opts.MemoryMiB, "memory", 0, "MiB per VM instead of the cluster's")
	fs.IntVar(&cf.opts.CPUs, "cpus", 0, "CPUs per VM instead of the cluster's")
	fs.StringVar(&cf.opts.Accel, "accel", lab.AccelAuto, "auto, kvm or tcg")
	fs.DurationVar(&cf.bootTimeout, "boot-timeout", 15*time.Minute, "how long a VM may take to answer over SSH")
	fs.DurationVar(&cf.healthTimeout, "health-timeout", 15*time.Minute, "how long the cluster may take to be healthy")
	fs.IntVar(&cf.records, "records", 100, "records the Kafka steps write and read back")
	fs.StringVar(&cf.clientConfig, "client-config", "", "the admin client's properties, for the Kafka steps")
	fs.StringVar(&cf.caCert, "ca-cert", "", "the cluster CA's certificate, for the Kafka steps")
	fs.StringVar(&cf.kafkaBin, "kafka-bin", "/opt/kafka/bin", "where Kafka's tools are")
	fs.StringVar(&cf.listen, "listen", "0.0.0.0", "the address up forwards ports on")
	fs.BoolVar(&cf.opts.Outbound, "outbound", false, "route the VMs beyond the lab (a rollout's registry)")
	fs.StringVar(&cf.upgrade, "upgrade", "", "build-all's output, text or JSON: smoke ends with a rollout onto these images (implies -outbound)")
	fs.StringVar(&cf.opts.Bridge, "bridge", lab.DefaultBridge, "the cluster network's bridge")
	fs.StringVar(&cf.opts.Subnet, "subnet", lab.DefaultSubnet, "the cluster network")
	fs.IntVar(&cf.opts.SSHPortBase, "ssh-port-base", lab.DefaultSSHPortBase, "node n's SSH is forwarded from this port + n")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	specJSON, err := os.ReadFile(cf.spec)
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	var s nodes.Spec
	if err := json.Unmarshal(specJSON, &s); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	c, err := nodes.Plan(s)
	if err != nil {
		return err
	}
	var upgrade map[string]string
	if cf.upgrade != "" {
		text, err := os.ReadFile(cf.upgrade)
		if err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
		if upgrade, err = health.ParsePublished(string(text)); err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
		cf.opts.Outbound = true
	}
	p, err := lab.NewPlan(c, cf.opts)
	if err != nil {
		return err
	}
	ssh, err := labSSH(c, p, cf, stderr)
	if err != nil {
		return err
	}
	defer ssh.Close()
	if verb == "up" {
		return up(ctx, p, ssh, cf, stdout, stderr)
	}
	smoke := lab.Smoke{Plan: p, Cluster: c, Run: ssh, Records: cf.records, Upgrade: upgrade, BootTimeout: cf.bootTimeout,
		HealthTimeout: cf.healthTimeout, Poll: 5 * time.Second, Log: stderr}
	if cf.clientConfig != "" {
		ca, err := os.ReadFile(cf.caCert)
		if err != nil {
			return fmt.Errorf("ca cert: %w", err)
		}
		work, err := os.MkdirTemp("", "kafka-bootc-lab")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		if smoke.Kafka, err = lab.NewKafkaTools(p, c, cf.kafkaBin, cf.clientConfig, ca, work); err != nil {
			return err
		}
	}
	l, rep := smoke.Start(ctx)
	if l != nil {
		defer l.Stop()
	}
	fmt.Fprint(stdout, rep.Table())
	if rep.Err != nil {
		return errors.New("smoke failed (the table says at which step)")
	}
	return nil
}

// labSSH reaches the nodes at their lab addresses as the disk user,
// checking the host keys given, or taking those of a first boot.
func labSSH(c *nodes.Cluster, p *lab.Plan, cf config, log io.Writer) (*remote.SSH, error) {
	key, err := os.ReadFile(cf.identity)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	rc := remote.Config{User: c.Disk.User, PrivateKey: key, Log: log, Timeout: 20 * time.Second}
	if cf.knownHosts == "" {
		rc.AcceptNewHostKeys = true
	} else {
		text, err := os.ReadFile(cf.knownHosts)
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		if rc.KnownHosts, err = p.KnownHosts(text); err != nil {
			return nil, err
		}
	}
	return remote.New(rc)
}

// up boots the lab and forwards its ports at once (they answer as soon as
// the node behind them does), then says when every node answers, and
// runs until it is stopped.
func up(ctx context.Context, p *lab.Plan, ssh *remote.SSH, cf config, stdout, stderr io.Writer) error {
	l, err := lab.Start(ctx, p, stderr)
	if err != nil {
		return err
	}
	defer l.Stop()
	var d net.Dialer
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	for _, vm := range p.VMs {
		ln, err := net.Listen("tcp", net.JoinHostPort(cf.listen, fmt.Sprint(vm.SSHPort)))
		if err != nil {
			return fmt.Errorf("%s: %w", vm.Node.Name, err)
		}
		defer ln.Close()
		go lab.Forward(ln, net.JoinHostPort(vm.IP.String(), "22"), dial, stderr)
	}
	if p.TLS {
		routes := map[string]string{}
		for _, vm := range p.VMs {
			if vm.Node.Role == nodes.Broker {
				for _, n := range vm.Names() {
					routes[n] = net.JoinHostPort(vm.IP.String(), fmt.Sprint(p.KafkaPort))
				}
			}
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(cf.listen, fmt.Sprint(p.KafkaPort)))
		if err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		defer ln.Close()
		go lab.RouteSNI(ln, routes, dial, stderr)
	}
	fmt.Fprintf(stdout, "lab: each node's SSH:\n%s", p.Addresses("127.0.0.1"))
	if p.TLS {
		fmt.Fprintf(stdout, "lab: the brokers' listener is port %d; add to /etc/hosts:\n%s", p.KafkaPort, p.HostsLines("127.0.0.1"))
	}
	if _, err := l.WaitSSH(ctx, ssh, cf.bootTimeout, 5*time.Second); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "lab: every node answers over SSH")
	<-ctx.Done()
	return nil
}
