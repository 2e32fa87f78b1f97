// The running cluster, reached over SSH: health and rollout.

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/remote"
	"dagger/kafka-bootc/rollout"
)

// Running is the cluster as it runs, reached over SSH as the disk user:
// what health reads and rollout changes. Give it the module arguments that
// the cluster was built with: they name the nodes, the probes and the
// tags.
type Running struct {
	// +private
	Spec string
	// +private
	Identity *dagger.Secret
	// +private
	KnownHosts *dagger.File
	// +private
	InsecureAcceptNewHostKeys bool
	// +private
	Address []string
	// +private
	SSHUser string
	// +private
	Published string
}

// Running returns the running cluster, to check with health or upgrade
// with rollout: "running --identity file:$HOME/.ssh/id_ed25519
// --known-hosts ./known_hosts health". It only checks its arguments; the
// nodes are reached by the function that follows.
func (m *KafkaBootc) Running(
	// Private SSH key of the disk user, for example file:$HOME/.ssh/id_ed25519
	// (no passphrase). It is never printed.
	identity *dagger.Secret,
	// known_hosts file listing every node's host key, for example made with
	// ssh-keyscan. Host keys are always checked against it.
	// +optional
	knownHosts *dagger.File,
	// Accept the host key of a node that --known-hosts does not list, and
	// print it. A node whose key differs from its line is refused all the
	// same.
	// +optional
	insecureAcceptNewHostKeys bool,
	// Where to reach a node, as NODE=HOST or NODE=HOST:PORT (repeatable);
	// a node not given is reached at its hostname.
	// +optional
	address []string,
	// User to log in as; the disk user when not given.
	// +optional
	sshUser string,
	// The published images, as build-all printed them ("<node>
	// <reference>@sha256:..." lines): what health compares with and rollout
	// moves to. By default, the digests that the nodes' tags point to, looked
	// up once.
	// +optional
	published string,
) (*Running, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	if knownHosts == nil && !insecureAcceptNewHostKeys {
		return nil, errors.New("known hosts: give --known-hosts (ssh-keyscan NODE... > known_hosts), or --insecure-accept-new-host-keys to trust the nodes' keys on first use")
	}
	refs, err := health.ParsePublished(published)
	if err != nil {
		return nil, err
	}
	if _, err := health.Targets(c, address, refs); err != nil {
		return nil, err
	}
	return &Running{Spec: m.Spec, Identity: identity, KnownHosts: knownHosts, InsecureAcceptNewHostKeys: insecureAcceptNewHostKeys,
		Address: address, SSHUser: sshUser, Published: published}, nil
}

// Health reads every node and prints one table: each node's role and id,
// its booted and staged image digests and whether they are the published
// ones, its Kafka unit, its place in the metadata quorum and the
// under-replicated partitions it leads; then "healthy", or what is wrong.
// It fails when the cluster is unhealthy. Run it after start-vms.sh, and
// before and after an upgrade. Root commands run through sudo, which the
// node images allow for exactly these checks and rollout's steps.
//
// Never cached: it reads running machines.
// +cache="never"
func (r *Running) Health(ctx context.Context) (string, error) {
	c, targets, ssh, err := r.connect(ctx, false)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	rep := health.Check(ctx, ssh, c, targets)
	if !rep.Healthy() {
		return "", fmt.Errorf("the cluster is unhealthy\n%s", rep.Table())
	}
	return rep.Table(), nil
}

// Rollout moves the running cluster to the published node images, one node
// at a time: controllers first, the quorum's leader last of them, then
// brokers. It refuses to start unless the cluster is healthy (as health
// reports it). For each node it stages the image with bootc, checks that
// the staged digest is the target, reboots into it, and waits for the
// node, its Kafka unit and the whole cluster to be healthy again before
// the next. It stops at the first failure, leaves the nodes after it
// untouched and says what it did; a rerun skips the nodes already on their
// target, so it resumes. A node stages what its tag points to, so a tag
// that moves during the rollout stops it.
//
// Never cached: it changes running machines.
// +cache="never"
func (r *Running) Rollout(
	ctx context.Context,
	// Print the plan (order, current and target digest of every node) and
	// change nothing.
	// +optional
	dryRun bool,
	// Roll a node that fails back to the deployment it ran before, and
	// reboot it. Without it, a failed node is left as it is, for a look.
	// +optional
	rollback bool,
	// How long to wait, in seconds, for a node to come back, for its Kafka
	// unit, and for the cluster to be healthy again, each.
	// +default=900
	timeout int,
) (string, error) {
	if timeout < 1 {
		return "", fmt.Errorf("timeout %d: must be at least 1 second", timeout)
	}
	c, targets, ssh, err := r.connect(ctx, true)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	return rollout.Run(ctx, ssh, c, targets, rollout.Options{
		Timeout: time.Duration(timeout) * time.Second, Poll: 5 * time.Second,
		Rollback: rollback, DryRun: dryRun, Log: os.Stderr,
	})
}

// connect plans the cluster, pairs its nodes with their addresses and
// published digests, and opens SSH to them. A tag that cannot be looked
// up is an error when the targets are needed, a warning otherwise.
func (r *Running) connect(ctx context.Context, needTargets bool) (*nodes.Cluster, []health.Node, *remote.SSH, error) {
	c, err := (&KafkaBootc{Spec: r.Spec}).cluster()
	if err != nil {
		return nil, nil, nil, err
	}
	refs, err := health.ParsePublished(r.Published)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.Published == "" && c.Registry != "" {
		for _, n := range c.Nodes {
			ref, err := dag.Container().From(c.Ref(n)).ImageRef(ctx)
			switch {
			case err == nil:
				refs[n.Name] = ref
			case needTargets:
				return nil, nil, nil, fmt.Errorf("%s: looking up %s: %w", n.Name, c.Ref(n), err)
			default:
				fmt.Fprintf(os.Stderr, "%s: looking up %s: %v\n", n.Name, c.Ref(n), err)
			}
		}
	}
	targets, err := health.Targets(c, r.Address, refs)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := remote.Config{User: r.SSHUser, AcceptNewHostKeys: r.InsecureAcceptNewHostKeys, Log: os.Stderr}
	if cfg.User == "" {
		cfg.User = c.Disk.User
	}
	key, err := r.Identity.Plaintext(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.PrivateKey = []byte(key)
	if r.KnownHosts != nil {
		hosts, err := r.KnownHosts.Contents(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.KnownHosts = []byte(hosts)
	}
	ssh, err := remote.New(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, targets, ssh, nil
}
