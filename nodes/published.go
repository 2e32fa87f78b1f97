package nodes

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Published is what build-all did with one node: the reference it was
// published under, pinned by digest, and whether that digest was signed
// and given an SBOM attestation. Image and Digest are empty when nothing
// was published (the cluster has no registry).
type Published struct {
	// Node is the node's name, kafka-broker-1.
	Node string `json:"node"`
	// Image is <registry>/<node>:<tag>@sha256:..., what the node runs.
	Image string `json:"image,omitempty"`
	// Digest is the image's digest alone.
	Digest string `json:"digest,omitempty"`
	// Signed and SBOM say whether cosign signed the digest and attached
	// an SPDX SBOM to it as a signed attestation.
	Signed bool `json:"signed"`
	SBOM   bool `json:"sbom"`
}

// The formats of build-all's result.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// CheckFormat accepts build-all's formats; empty is text.
func CheckFormat(format string) error {
	switch format {
	case "", FormatText, FormatJSON:
		return nil
	}
	return fmt.Errorf("format %q: must be %s (a line per node) or %s (a list of {node, image, digest, signed, sbom})", format, FormatText, FormatJSON)
}

// FormatPublished writes build-all's result: in text, a line per node
// ("kafka-broker-1 quay.io/me/kafka-broker-1:latest@sha256:... signed,
// SBOM attached", or "kafka-broker-1 built" when nothing was published,
// followed by a line that says so); in JSON, the list of Published, for
// jq, the workflow and other modules.
func FormatPublished(format string, ps []Published) (string, error) {
	if err := CheckFormat(format); err != nil {
		return "", err
	}
	if format == FormatJSON {
		if ps == nil {
			ps = []Published{}
		}
		b, err := json.MarshalIndent(ps, "", "  ")
		if err != nil {
			return "", err
		}
		return string(b) + "\n", nil
	}
	var b strings.Builder
	published := false
	for _, p := range ps {
		switch {
		case p.Image == "":
			fmt.Fprintf(&b, "%s built\n", p.Node)
		case p.Signed && p.SBOM:
			fmt.Fprintf(&b, "%s %s signed, SBOM attached\n", p.Node, p.Image)
			published = true
		default:
			fmt.Fprintf(&b, "%s %s\n", p.Node, p.Image)
			published = true
		}
	}
	if !published {
		b.WriteString("nothing was published: the cluster has no registry\n")
	}
	return b.String(), nil
}

// PublishedAt is the result for a node published as ref, a reference
// pinned by digest.
func PublishedAt(node, ref string) Published {
	_, digest, _ := strings.Cut(ref, "@")
	return Published{Node: node, Image: ref, Digest: digest}
}
