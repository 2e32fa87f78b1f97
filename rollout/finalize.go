package rollout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
)

// Finalization, the second step of a Kafka version upgrade (Kafka's
// upgrade notes; Strimzi's metadataVersion): once every node runs the new
// binaries and the cluster is healthy, metadata.version is raised to the
// new release with kafka-features.sh upgrade. Until then the nodes can go
// back to the old image; after it they cannot.

// compareReleases compares two releases, major.minor, as numbers.
func compareReleases(a, b string) int {
	parse := func(r string) (int, int) {
		major, minor, _ := strings.Cut(r, ".")
		x, _ := strconv.Atoi(major)
		y, _ := strconv.Atoi(minor)
		return x, y
	}
	ax, ay := parse(a)
	bx, by := parse(b)
	if ax != bx {
		return ax - bx
	}
	return ay - by
}

// metadataGap compares the cluster's finalized metadata.version, as rep
// read it, with the release of the cluster's Kafka image: cmp is below 0
// when the image's release is the newer. ok is false when either is not
// known.
func metadataGap(c *nodes.Cluster, rep health.Report) (finalized, release string, cmp int, ok bool) {
	release = c.KafkaVersion.Release()
	finalized = rep.MetadataVersion.Finalized
	if finalized == "" {
		return finalized, release, 0, false
	}
	return finalized, release, compareReleases(health.Release(finalized), release), true
}

// finalizeState says what finalizing would do on the cluster as rep read
// it: nothing (done, true) when metadata.version is at the image's release
// already, or why it cannot be done yet.
func finalizeState(c *nodes.Cluster, rep health.Report) (done bool, err error) {
	_, _, cmp, ok := metadataGap(c, rep)
	if !ok {
		return false, errors.New("finalize: the cluster's metadata.version cannot be read (a node image from before finalizing existed does not allow it: roll the new images out first)")
	}
	if cmp >= 0 {
		return true, nil
	}
	version := c.KafkaVersion.String()
	var behind []string
	for _, r := range rep.Rows {
		switch r.Version {
		case version:
		case "":
			behind = append(behind, r.Name+"'s version cannot be read")
		default:
			behind = append(behind, fmt.Sprintf("%s runs %s", r.Name, r.Version))
		}
	}
	if len(behind) > 0 {
		return false, fmt.Errorf("finalize: every node must run Kafka %s first: %s", version, strings.Join(behind, ", "))
	}
	return false, nil
}

// Finalize raises the cluster's metadata.version to the release of its
// Kafka image, once every node runs that image's Kafka and the cluster is
// healthy, and checks that the cluster took it.
func Finalize(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, o Options) (string, error) {
	o = o.withDefaults()
	rep := health.Check(ctx, run, c, ns)
	rep.ReadDetails(ctx, run, c)
	return o.finalize(ctx, run, c, ns, rep)
}

func (o Options) finalize(ctx context.Context, run health.Runner, c *nodes.Cluster, ns []health.Node, rep health.Report) (string, error) {
	release := c.KafkaVersion.Release()
	done, err := finalizeState(c, rep)
	if err != nil {
		return "", err
	}
	from := rep.MetadataVersion.Finalized
	if done {
		return fmt.Sprintf("metadata.version %s is finalized already\n", from), nil
	}
	if o.DryRun {
		return fmt.Sprintf("would finalize metadata.version %s to %s; after it, no node can go back to an older Kafka\n", from, release), nil
	}
	if !rep.Healthy() {
		return "", fmt.Errorf("finalize: refusing: the cluster is unhealthy\n%s", rep.Table())
	}
	argv := c.FinalizeAction()
	broker, err := featuresBroker(ns)
	if err != nil {
		return "", fmt.Errorf("finalize: %w", err)
	}
	fmt.Fprintf(o.Log, "%s: finalizing metadata.version %s to %s\n", broker.Name, from, release)
	if _, err := run.Run(ctx, broker.Host, nodes.AsRoot(argv)); err != nil {
		return "", fmt.Errorf("finalize: %w", err)
	}
	out, err := health.RunProbe(ctx, run, c, *broker, nodes.ProbeFeatures)
	if err != nil {
		return "", fmt.Errorf("finalize: reading metadata.version back: %w", err)
	}
	features, err := health.ParseFeatures(out)
	if err != nil {
		return "", fmt.Errorf("finalize: reading metadata.version back: %w", err)
	}
	now := features["metadata.version"].Finalized
	if health.Release(now) != release {
		return "", fmt.Errorf("finalize: metadata.version is %s after the upgrade, want %s", now, release)
	}
	return fmt.Sprintf("metadata.version finalized: %s to %s; no node can go back to an older Kafka now\n", from, now), nil
}

// featuresBroker is the broker that kafka-features.sh runs on, to finalize
// metadata.version or raise kraft.version: the first of the cluster's.
func featuresBroker(ns []health.Node) (*health.Node, error) {
	for i := range ns {
		if ns[i].Role == nodes.Broker {
			return &ns[i], nil
		}
	}
	return nil, errors.New("the cluster has no broker to run kafka-features.sh on")
}
