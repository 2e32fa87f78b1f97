package realkafka

import (
	"context"
	"fmt"
	"strings"

	"dagger/kafka-bootc/internal/fakenodes"
	"dagger/kafka-bootc/nodes"
)

// Runner answers the commands that health's probes send to a node over
// SSH, on the real nodes: "podman exec" of the Kafka container runs the
// real tool in the node's container, "systemctl is-active" of the Kafka
// unit answers whether the node's Kafka process runs. bootc is the one
// stand-in: every node reports the deployment Booted.
type Runner struct {
	Cluster *Cluster
	// Booted is the digest every node's bootc reports.
	Booted string
}

// Run runs a probe's command on the node whose hostname is host.
func (r Runner) Run(ctx context.Context, host string, argv []string) ([]byte, error) {
	var n *Node
	for _, node := range r.Cluster.Nodes {
		if node.Hostname == host {
			n = node
		}
	}
	if n == nil {
		return nil, fmt.Errorf("dial tcp %s:22: no such host", host)
	}
	args := argv
	if len(args) > 2 && args[0] == "sudo" && args[1] == "-n" {
		args = args[2:]
	}
	if out, _, err, handled := n.unitCommand(ctx, args); handled {
		return out, err
	}
	if len(args) == 3 && args[0] == "/usr/bin/bootc" && args[1] == "status" {
		return []byte(fakenodes.BootcJSON(r.Booted, "")), nil
	}
	return nil, fmt.Errorf("%s: the real-Kafka runner does not answer %q", n.Name, strings.Join(argv, " "))
}

// probeArgv is a probe's command as it runs in the node's container.
func probeArgv(c *nodes.Cluster, r nodes.Role, name string) ([]string, error) {
	p, ok := c.Probe(r, name)
	if !ok || len(p.Argv) < 4 || p.Argv[1] != "exec" {
		return nil, fmt.Errorf("no %s probe of Kafka's tools on a %s", name, r)
	}
	return p.Argv[3:], nil
}
