//go:build dagger_offline

package main

import "testing"

func TestPublishedRefsReadsBuildAllOutput(t *testing.T) {
	out := "kafka-broker-1 localhost:5000/e2e/kafka-broker-1:latest@sha256:ab\nkafka-controller-1 localhost:5000/e2e/kafka-controller-1:latest@sha256:cd\n"
	refs, err := publishedRefs(out)
	if err != nil {
		t.Fatal(err)
	}
	if refs["kafka-controller-1"] != "localhost:5000/e2e/kafka-controller-1:latest@sha256:cd" || len(refs) != 2 {
		t.Errorf("refs %v", refs)
	}
	if _, err := publishedRefs("kafka-broker-1 built\nnothing was published: no --registry given\n"); err == nil {
		t.Error("output without digests accepted")
	}
}
