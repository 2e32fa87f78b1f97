package nodes

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBuildAllsResultInTextAndJSON: the text keeps its line per node, and
// the JSON holds the same nodes, references, digests and signing, as jq
// and the workflow read them; a format that is neither is refused first.
func TestBuildAllsResultInTextAndJSON(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	signed := PublishedAt("kafka-broker-1", "quay.io/me/kafka-broker-1:latest@"+digest)
	signed.Signed, signed.SBOM = true, true
	ps := []Published{signed, PublishedAt("kafka-controller-1", "quay.io/me/kafka-controller-1:latest@"+digest)}
	text, err := FormatPublished("", ps)
	want := "kafka-broker-1 quay.io/me/kafka-broker-1:latest@" + digest + " signed, SBOM attached\n" +
		"kafka-controller-1 quay.io/me/kafka-controller-1:latest@" + digest + "\n"
	if err != nil || text != want {
		t.Errorf("text:\n%s\nwant:\n%s", text, want)
	}
	out, err := FormatPublished(FormatJSON, ps)
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(back) != 2 || back[0]["node"] != "kafka-broker-1" || back[0]["digest"] != digest || back[0]["signed"] != true || back[0]["sbom"] != true ||
		back[1]["image"] != "quay.io/me/kafka-controller-1:latest@"+digest || back[1]["signed"] != false {
		t.Errorf("json:\n%s", out)
	}
	built := []Published{{Node: "kafka-broker-1"}}
	if text, _ := FormatPublished(FormatText, built); text != "kafka-broker-1 built\nnothing was published: the cluster has no registry\n" {
		t.Errorf("unpublished text: %q", text)
	}
	if out, _ := FormatPublished(FormatJSON, built); strings.Contains(out, "image") || !strings.Contains(out, `"node": "kafka-broker-1"`) {
		t.Errorf("unpublished json: %s", out)
	}
	if out, _ := FormatPublished(FormatJSON, nil); out != "[]\n" {
		t.Errorf("no nodes: %q", out)
	}
	if _, err := FormatPublished("yaml", ps); err == nil || !strings.HasPrefix(err.Error(), `format "yaml": must be text`) {
		t.Errorf("%v", err)
	}
}
