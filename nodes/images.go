package nodes

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// CheckBoundImage reports whether ref can be a logically bound image: bootc
// reads it as written, so it must be fully qualified (registry included) and
// pinned by a tag other than latest or by a digest.
func CheckBoundImage(ref string) error {
	named, err := parseQualified(ref)
	if err != nil {
		return err
	}
	_, tagged := named.(reference.Tagged)
	_, digested := named.(reference.Digested)
	switch {
	case !tagged && !digested:
		return fmt.Errorf("%q: must be pinned by a tag or a digest (@sha256:...)", ref)
	case tagged && named.(reference.Tagged).Tag() == "latest" && !digested:
		return fmt.Errorf("%q: must be pinned by a tag other than latest, or by a digest", ref)
	}
	return nil
}

// CheckBaseImage reports whether ref names a bootc base image that a build
// can start from unambiguously: a fully qualified reference.
func CheckBaseImage(ref string) error {
	_, err := parseQualified(ref)
	return err
}

func parseQualified(ref string) (reference.Named, error) {
	if ref == "" {
		return nil, errors.New("an image reference is required")
	}
	if strings.Contains(ref, "%") {
		return nil, fmt.Errorf("%q: must not hold systemd %% specifiers", ref)
	}
	parsed, err := reference.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%q: not an image reference: %w", ref, err)
	}
	named, ok := parsed.(reference.Named)
	if !ok {
		return nil, fmt.Errorf("%q: must name a repository, not only a digest", ref)
	}
	if d := reference.Domain(named); d != "localhost" && !strings.ContainsAny(d, ".:") {
		return nil, fmt.Errorf("%q: must be fully qualified with its registry, for example docker.io/%s", ref, ref)
	}
	return named, nil
}

// DefaultRegistry is where a bare registry namespace ("me") points.
const DefaultRegistry = "quay.io"

func (c *Cluster) setRegistry(registry, tag string) error {
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("tag %q: must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", tag)
	}
	c.Tag = tag
	if registry == "" {
		return nil
	}
	registry = strings.TrimSuffix(registry, "/")
	if first, _, _ := strings.Cut(registry, "/"); !strings.ContainsAny(first, ".:") && first != "localhost" {
		registry = DefaultRegistry + "/" + registry
	}
	if _, err := reference.ParseNamed(registry + "/kafka-broker-1:" + tag); err != nil {
		return fmt.Errorf("registry %q: must be a registry and namespace such as quay.io/me: %w", registry, err)
	}
	c.Registry = registry
	return nil
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Ref is the reference a node image is published under and that the node
// upgrades from. It is empty when the cluster has no registry.
func (c *Cluster) Ref(n Node) string {
	if c.Registry == "" {
		return ""
	}
	return c.Registry + "/" + n.Name + ":" + c.Tag
}

// Host is the registry host of c.Registry, for registry credentials.
func (c *Cluster) Host() string {
	host, _, _ := strings.Cut(c.Registry, "/")
	return host
}

// OnRegistryHost reports whether an image reference lives on the host of
// the cluster's registry: a registry service that stands in for that host
// serves it too.
func (c *Cluster) OnRegistryHost(ref string) bool {
	if c.Registry == "" {
		return false
	}
	named, err := reference.ParseNormalizedNamed(ref)
	return err == nil && reference.Domain(named) == c.Host()
}

// ErrNoRegistry says that disks need a registry: a disk installs its node
// image under the registry reference, which is where bootc upgrade looks.
var ErrNoRegistry = errors.New("registry: a disk needs the cluster file's registry: it installs <registry>/<node>:<tag>, which is where bootc upgrade looks for updates")

// StoredImage is an image that bootc-image-builder must find in its
// container storage: the node image and every bound image.
type StoredImage struct {
	// Ref is the reference bib and bootc look for.
	Ref string
	// Pull, when set, is pulled by digest: an image pinned by digest cannot
	// be loaded from an archive, whose digest differs from the registry's.
	Pull string
	// Node is set for the node's own image; the others are the same for
	// every node.
	Node bool
}

// DiskImages lists what a node's disk build needs in bib's storage. The
// node image is stored under its registry reference, which becomes the
// node's upgrade source; published, when set, is the digest-pinned image
// that build-all published for the node, installed instead of a rebuild.
func (c *Cluster) DiskImages(n Node, published string) ([]StoredImage, error) {
	ref := c.Ref(n)
	if ref == "" {
		return nil, ErrNoRegistry
	}
	node := StoredImage{Ref: ref, Node: true}
	if published != "" {
		parsed, err := reference.ParseNamed(published)
		if err != nil {
			return nil, fmt.Errorf("image %q: not a fully qualified image reference: %w", published, err)
		}
		want := c.Registry + "/" + n.Name
		if _, ok := parsed.(reference.Digested); !ok || parsed.Name() != want {
			return nil, fmt.Errorf("image %q: must be %s pinned by digest (%s@sha256:...), as build-all prints it", published, want, want)
		}
		node = StoredImage{Ref: ref, Pull: published, Node: true}
	}
	out := []StoredImage{node}
	for _, img := range []string{c.KafkaImage, c.ExporterImage} {
		s := StoredImage{Ref: img}
		if parsed, err := reference.Parse(img); err == nil {
			if _, digested := parsed.(reference.Digested); digested {
				s.Pull = img
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// PublishWaves orders the nodes' publishes so that a registry receives each
// layer once. Pushes that start together cannot mount from each other: each
// uploads every layer that the registry lacks, the gigabytes of the bootc
// base included. So the first node goes alone and uploads the base; then
// the first node of each other role, which mounts the base and uploads its
// role's layers; then every other node at once, each with only its own thin
// layer to upload. The nodes keep the cluster's order within each wave.
func (c *Cluster) PublishWaves() [][]Node {
	var first, roleFirsts, rest []Node
	seen := map[Role]bool{}
	for _, n := range c.Nodes {
		switch {
		case len(first) == 0:
			first = append(first, n)
		case !seen[n.Role]:
			roleFirsts = append(roleFirsts, n)
		default:
			rest = append(rest, n)
		}
		seen[n.Role] = true
	}
	var waves [][]Node
	for _, w := range [][]Node{first, roleFirsts, rest} {
		if len(w) > 0 {
			waves = append(waves, w)
		}
	}
	return waves
}
