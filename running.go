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
// what health reads and rollout changes. The module's cluster file, the one
// the cluster was built from, names the nodes, the probes and the tags.
type Running struct {
	// Parent is the module the cluster was described with: its cluster and
	// its registry logins.
	// +private
	Parent *KafkaBootc
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
	// +private
	Jump []string
}

// Running returns the running cluster, reached over SSH.
//
// Running returns the running cluster, reached over SSH, for health,
// rollout, renew-certificates and trust.
//
// For example "running --identity file:$HOME/.ssh/id_ed25519 --known-hosts
// ./disk-images/known_hosts --address-file ./disk-images/addresses.txt
// health". It only checks its arguments; the nodes are reached by the
// function that follows.
func (m *KafkaBootc) Running(
	ctx context.Context,
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
	// A file of NODE=HOST[:PORT] lines, as start-vms.sh writes
	// addresses.txt; --address overrides a line of it.
	// +optional
	addressFile *dagger.File,
	// An SSH host to go through to the nodes, as [USER@]HOST[:PORT], for
	// example a bastion, or the hypervisor whose NAT network holds the VMs
	// (repeatable for a chain, in order, as ssh -J). It logs in with the
	// same --identity (the node user when USER is not given), and its host
	// key must be in --known-hosts too.
	// +optional
	jump []string,
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
	if addressFile != nil {
		text, err := addressFile.Contents(ctx)
		if err != nil {
			return nil, fmt.Errorf("address file: %w", err)
		}
		fromFile, err := health.ParseAddressFile(text)
		if err != nil {
			return nil, err
		}
		address = health.MergeAddresses(fromFile, address)
	}
	if _, err := health.Targets(c, address, refs); err != nil {
		return nil, err
	}
	for _, j := range jump {
		if _, err := remote.ParseJump(j); err != nil {
			return nil, err
		}
	}
	return &Running{Parent: m, Identity: identity, KnownHosts: knownHosts, InsecureAcceptNewHostKeys: insecureAcceptNewHostKeys,
		Address: address, SSHUser: sshUser, Published: published, Jump: jump}, nil
}

// Health returns a table of every node's state, and fails when unhealthy.
//
// It reads every node and prints one table, then "healthy" or what is
// wrong; it fails when the cluster is unhealthy.
//
// A row per node: its role and id, its booted and staged image digests and
// whether they are the published ones, its Kafka unit, its place in the
// metadata quorum, the under-replicated partitions it leads, and in tls
// mode the days its certificate has left, read from its own Kafka
// listener. Run it after start-vms.sh, and before and after an upgrade.
// Root commands run through sudo, which the node images allow for exactly
// these checks and the rolling operations' steps.
//
// Never cached: it reads running machines.
// +cache="never"
func (r *Running) Health(
	ctx context.Context,
	// A node certificate with fewer days left than this makes the cluster
	// unhealthy: time to run renew-certificates.
	// +default=30
	certMinDays int,
) (string, error) {
	if err := checkCertMinDays(certMinDays); err != nil {
		return "", err
	}
	c, targets, ssh, err := r.connect(ctx, false)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	rep := health.Check(ctx, ssh, c, targets)
	rep.ReadDetails(ctx, ssh, c)
	rep.CheckCertificates(c, certMinDays, rep.At)
	if !rep.Healthy() {
		return "", fmt.Errorf("the cluster is unhealthy\n%s", rep.Table())
	}
	return rep.Table(), nil
}

// Rollout moves the running cluster to the published images, node by node.
//
// It moves the running cluster to the published node images, one node
// at a time: controllers first, the quorum's leader last of them, then
// brokers. It refuses to start unless the cluster is healthy (as health
// reports it). For each node it stages the image with bootc, checks that
// the staged digest is the target, reboots into it, and waits for the
// node, its Kafka unit and the whole cluster to be healthy again before
// the next. It stops at the first failure, leaves the nodes after it
// untouched and says what it did; a rerun skips the nodes already on their
// target, so it resumes. A node stages what its tag points to, so a tag
// that moves during the rollout stops it. When the new images run another
// Kafka release, it finalizes the upgrade last (see finalize), unless
// --no-finalize; it refuses to move a cluster below its finalized
// metadata.version.
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
	// When the rollout changes the Kafka version, leave metadata.version
	// as it is, so that the nodes can still go back to the old image;
	// finalize completes the upgrade later.
	// +optional
	noFinalize bool,
	// How long to wait, in seconds, for a node to come back, for its Kafka
	// unit, and for the cluster to be healthy again, each.
	// +default=900
	timeout int,
) (string, error) {
	o, err := rollingOptions(timeout, dryRun)
	if err != nil {
		return "", err
	}
	o.Rollback, o.NoFinalize = rollback, noFinalize
	c, targets, ssh, err := r.connect(ctx, true)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	return rollout.Run(ctx, ssh, c, targets, o)
}

// Finalize completes a Kafka version upgrade: it raises metadata.version.
//
// Once every node runs the Kafka of the cluster's image and the cluster is
// healthy, it raises the cluster's metadata.version to that release with
// kafka-features.sh upgrade, on a broker, and checks that the cluster took
// it. rollout does it by itself at the end of a rollout that changed the
// Kafka version, unless --no-finalize; after it, no node can go back to an
// older Kafka.
//
// Never cached: it changes the running cluster.
// +cache="never"
func (r *Running) Finalize(
	ctx context.Context,
	// Say what it would do, and change nothing.
	// +optional
	dryRun bool,
) (string, error) {
	c, targets, ssh, err := r.connect(ctx, false)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	return rollout.Finalize(ctx, ssh, c, targets, rollout.Options{DryRun: dryRun, Log: os.Stderr})
}

// Quorum makes a dynamic quorum's voters the cluster file's controllers.
//
// For a cluster file with quorum: dynamic (KIP-853), one voter at a time:
// a controller of the file that runs as an observer (a new controller
// started from its disk, or one whose disk was replaced) becomes a voter
// once it has caught up with the leader, after the voter of its node id
// that lost its data left; a voter that the file no longer names is
// removed, and its machine can then be retired. Before each step the
// quorum must keep a majority of caught-up voters through it, and after it
// the quorum must show it, within the timeout. It stops at the first
// failure and says what it did; a rerun resumes.
//
// Never cached: it changes the running cluster.
// +cache="never"
func (r *Running) Quorum(
	ctx context.Context,
	// Print the steps and change nothing.
	// +optional
	dryRun bool,
	// How long to wait, in seconds, for a node to catch up before its step,
	// and for the quorum to show the step, each.
	// +default=900
	timeout int,
) (string, error) {
	o, err := rollingOptions(timeout, dryRun)
	if err != nil {
		return "", err
	}
	c, targets, ssh, err := r.connect(ctx, false)
	if err != nil {
		return "", err
	}
	defer ssh.Close()
	return rollout.Quorum(ctx, ssh, c, targets, o)
}

// rollingOptions checks the arguments that every rolling operation takes.
func rollingOptions(timeout int, dryRun bool) (rollout.Options, error) {
	if timeout < 1 {
		return rollout.Options{}, fmt.Errorf("timeout %d: must be at least 1 second", timeout)
	}
	return rollout.Options{Timeout: time.Duration(timeout) * time.Second, Poll: 5 * time.Second, DryRun: dryRun, Log: os.Stderr}, nil
}

// checkCertMinDays checks health's threshold.
func checkCertMinDays(days int) error {
	if days < 1 || days > 36500 {
		return fmt.Errorf("cert min days %d: must be from 1 to 36500", days)
	}
	return nil
}

// connect plans the cluster, pairs its nodes with their addresses and
// published digests, and opens SSH to them. A tag that cannot be looked
// up is an error when the targets are needed, a warning otherwise.
func (r *Running) connect(ctx context.Context, needTargets bool) (*nodes.Cluster, []health.Node, *remote.SSH, error) {
	c, err := r.Parent.cluster()
	if err != nil {
		return nil, nil, nil, err
	}
	refs, err := health.ParsePublished(r.Published)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.Published == "" && c.Registry != "" {
		for _, n := range c.Nodes {
			ref, err := r.Parent.pull(c.Ref(n)).ImageRef(ctx)
			err = nodes.RegistryError("looking up", c.Ref(n), err)
			switch {
			case err == nil:
				refs[n.Name] = ref
			case needTargets:
				return nil, nil, nil, fmt.Errorf("%s: %w", n.Name, err)
			default:
				fmt.Fprintf(os.Stderr, "%s: %v\n", n.Name, err)
			}
		}
	}
	targets, err := health.Targets(c, r.Address, refs)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := remote.Config{User: r.SSHUser, AcceptNewHostKeys: r.InsecureAcceptNewHostKeys, Log: os.Stderr}
	for _, j := range r.Jump {
		hop, err := remote.ParseJump(j)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.Jump = append(cfg.Jump, hop)
	}
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
