// The node images: a role's base image and each node's thin layer, built
// from the plans of package nodes.

package main

import (
	"strings"

	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
)

// Base returns a role's base image, which every node of the role builds on.
//
// It returns a role's base image, built once and shared by every node of
// the role: packages, firewall, quadlets, bound-image links, data directory,
// the upgrade timer masked, and checked with bootc container lint.
// Kept for one session only: it starts from the base image's tag, which
// moves with every update of the base.
// +cache="session"
func (m *KafkaBootc) Base(
	// Role: broker or controller.
	role string,
) (*dagger.Container, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	r, err := nodes.ParseRole(role)
	if err != nil {
		return nil, err
	}
	return m.base(c, r, nil)
}

// base builds a role's base image; registry, when set, is a registry
// service that serves the images on the cluster registry's host.
func (m *KafkaBootc) base(c *nodes.Cluster, r nodes.Role, registry *dagger.Service) (*dagger.Container, error) {
	img, err := c.RoleImage(r)
	if err != nil {
		return nil, err
	}
	given := map[string]*dagger.File{}
	if m.JMXExporterJar != nil {
		given[nodes.JMXAgentPath] = m.JMXExporterJar
	}
	return apply(m.pullVia(c, registry, img.From), img, given), nil
}

// NodeImage returns one node's image: its role's base plus the node's layer.
//
// It returns a node's image: its role's base image plus one thin
// layer with the hostname and the node's Kafka settings. Open a shell in it
// with "node-image --name kafka-broker-1 terminal". (Not named "node":
// Dagger v0.21's CLI loads file arguments through a core field of that
// name, which a module function called node hides.) Kept for one session
// only: it starts from the base image's tag, which moves.
// +cache="session"
func (m *KafkaBootc) NodeImage(
	// Node name, for example kafka-broker-1 or kafka-controller-3.
	name string,
) (*dagger.Container, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	n, err := c.Node(name)
	if err != nil {
		return nil, err
	}
	return m.node(c, n, nil)
}

func (m *KafkaBootc) node(c *nodes.Cluster, n nodes.Node, registry *dagger.Service) (*dagger.Container, error) {
	base, err := m.base(c, n.Role, registry)
	if err != nil {
		return nil, err
	}
	img, err := c.NodeImage(n)
	if err != nil {
		return nil, err
	}
	return apply(base, img, nil), nil
}

// apply builds an image plan on a container, in the plan's order. A
// download whose path is in given takes that file instead, checked against
// the download's digest all the same.
func apply(ctr *dagger.Container, img nodes.Image, given map[string]*dagger.File) *dagger.Container {
	run := func(ctr *dagger.Container, cmds []nodes.Command) *dagger.Container {
		for _, cmd := range cmds {
			if cmd.Cache != "" {
				// Keyed by base image, so two distributions never share one.
				key := "kafka-bootc" + strings.ReplaceAll(cmd.Cache, "/", "-") + "-" + img.From
				ctr = ctr.WithMountedCache(cmd.Cache, dag.CacheVolume(key),
					dagger.ContainerWithMountedCacheOpts{Sharing: dagger.CacheSharingModeLocked})
			}
			ctr = ctr.WithExec(cmd.Args)
			if cmd.Cache != "" {
				ctr = ctr.WithoutMount(cmd.Cache)
			}
		}
		return ctr
	}
	ctr = run(ctr, img.Run)
	for _, d := range img.Downloads {
		opts := dagger.ContainerWithFileOpts{Permissions: int(d.Mode.Perm())}
		if file, ok := given[d.Path]; ok {
			ctr = ctr.WithFile(d.Path, file, opts).WithExec(d.Check())
			continue
		}
		ctr = ctr.WithFile(d.Path, dag.HTTP(d.URL, dagger.HTTPOpts{Checksum: "sha256:" + d.SHA256}), opts)
	}
	for _, f := range img.Files {
		ctr = ctr.WithNewFile(f.Path, string(f.Content), dagger.ContainerWithNewFileOpts{Permissions: int(f.Mode.Perm())})
	}
	for _, l := range img.Symlinks {
		ctr = ctr.WithSymlink(l.Target, l.Path)
	}
	ctr = run(ctr, img.Check)
	for _, l := range img.Labels {
		ctr = ctr.WithLabel(l.Name, l.Value)
	}
	return ctr
}
