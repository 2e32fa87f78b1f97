package health

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"dagger/kafka-bootc/nodes"

	"github.com/distribution/reference"
)

// Targets pairs the cluster's nodes with their addresses and published
// digests. addresses are "NODE=HOST" or "NODE=HOST:PORT"; a node not named
// is reached at its hostname. published maps node names to the digest
// references build-all printed, and may be empty.
func Targets(c *nodes.Cluster, addresses []string, published map[string]string) ([]Node, error) {
	addr := map[string]string{}
	for _, a := range addresses {
		name, host, ok := strings.Cut(a, "=")
		if _, err := c.Node(name); !ok || err != nil {
			return nil, fmt.Errorf("address %q: must be NODE=HOST[:PORT] for a node of the cluster (%s)", a, names(c))
		}
		if !validHost(host) {
			return nil, fmt.Errorf("address %q: %q is not a host name, an IP address or either with a port", a, host)
		}
		if _, dup := addr[name]; dup {
			return nil, fmt.Errorf("address %q: %s is given twice", a, name)
		}
		addr[name] = host
	}
	var out []Node
	for _, n := range c.Nodes {
		t := Node{Node: n, Host: n.Hostname}
		if a, ok := addr[n.Name]; ok {
			t.Host = a
		}
		if ref := published[n.Name]; ref != "" {
			named, err := reference.ParseNormalizedNamed(ref)
			d, ok := named.(reference.Digested)
			if err != nil || !ok {
				return nil, fmt.Errorf("published %s: %q is not a reference pinned by digest", n.Name, ref)
			}
			t.Published = d.Digest().String()
		}
		out = append(out, t)
	}
	return out, nil
}

// ParsePublished reads build-all's output, a "<node> <reference>" line per
// node or, with --format json, its list, into references by node name; no
// output gives none. A node without a digest (an unpublished build) is
// refused: there is nothing to compare with.
func ParsePublished(out string) (map[string]string, error) {
	refs := map[string]string{}
	if out == "" {
		return refs, nil
	}
	if strings.HasPrefix(strings.TrimSpace(out), "[") {
		var list []nodes.Published
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return nil, fmt.Errorf("published: not build-all's JSON: %w", err)
		}
		for _, p := range list {
			if !strings.Contains(p.Image, "@sha256:") {
				return nil, fmt.Errorf("published: %s has no reference pinned by digest (was it published?)", p.Node)
			}
			refs[p.Node] = p.Image
		}
		return refs, nil
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// What follows the reference ("signed") is a note for people.
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[1], "@sha256:") {
			return nil, fmt.Errorf("published: line %q is not \"<node> <reference>@sha256:...\" as build-all prints it", line)
		}
		refs[f[0]] = f[1]
	}
	return refs, nil
}

func validHost(h string) bool {
	if host, port, err := net.SplitHostPort(h); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		h = host
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || strings.Trim(strings.ToLower(label), "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || label[0] == '-' {
			return false
		}
	}
	return h != ""
}

func names(c *nodes.Cluster) string {
	ns := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		ns[i] = n.Name
	}
	return strings.Join(ns, ", ")
}

// ParseAddressFile reads NODE=HOST[:PORT] lines, as start-vms.sh writes
// addresses.txt; blank lines and lines starting with # are left out.
// Targets checks each entry.
func ParseAddressFile(text string) ([]string, error) {
	var out []string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			return nil, fmt.Errorf("address file, line %d: %q must be NODE=HOST[:PORT]", i+1, line)
		}
		out = append(out, line)
	}
	return out, nil
}

// MergeAddresses joins a file's addresses and the ones given one by one,
// which override the file's for the same node.
func MergeAddresses(file, given []string) []string {
	override := map[string]bool{}
	for _, a := range given {
		name, _, _ := strings.Cut(a, "=")
		override[name] = true
	}
	var out []string
	for _, a := range file {
		if name, _, _ := strings.Cut(a, "="); !override[name] {
			out = append(out, a)
		}
	}
	return append(out, given...)
}
