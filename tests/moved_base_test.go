//go:build dagger_offline

package main

import (
	"maps"
	"os"
	"os/exec"
	"testing"
)

// daggerCLI is the dagger CLI that the tests which need one session per
// step run; they skip unless KAFKA_BOOTC_E2E_DAGGER names it.
func daggerCLI(t *testing.T) string {
	t.Helper()
	cli := os.Getenv("KAFKA_BOOTC_E2E_DAGGER")
	if cli == "" {
		t.Skip("skipped: set KAFKA_BOOTC_E2E_DAGGER to the dagger CLI to run it on an engine")
	}
	return cli
}

// TestMovedBaseTagPublishesNewDigests runs build-all twice
// with the same arguments, each time in a Dagger session of its own (one
// dagger call each), after the base image's tag moved: the second run must
// publish new digests for every node. A third run on the same base must
// print the second run's digests again. It needs the dagger CLI and an
// engine, so it runs only when KAFKA_BOOTC_E2E_DAGGER names the CLI:
//
//	KAFKA_BOOTC_E2E_DAGGER=$(command -v dagger) go test -tags dagger_offline -run MovedBase ./...
func TestMovedBaseTagPublishesNewDigests(t *testing.T) {
	cli := daggerCLI(t)
	run := func(variant string) map[string]string {
		t.Helper()
		cmd := exec.Command(cli, "call", "-m", ".", "build-on-moved-base", "--variant", variant)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("variant %s: %v", variant, err)
		}
		refs, err := publishedRefs(string(out))
		if err != nil {
			t.Fatalf("variant %s: %v", variant, err)
		}
		return refs
	}
	// A variant of its own per test run, so that the first base differs
	// from whatever an earlier run left under the tag.
	first := run("first " + nonce())
	variant := "second " + nonce()
	second := run(variant)
	if len(first) != 2 || len(second) != 2 {
		t.Fatalf("build-all printed %v, then %v; want two nodes each", first, second)
	}
	for node, ref := range first {
		if second[node] == ref {
			t.Errorf("%s: the base tag moved, yet the rerun printed the same digest %s", node, ref)
		}
	}
	if again := run(variant); !maps.Equal(again, second) {
		t.Errorf("the same base published again gave other digests: %v, then %v", second, again)
	}
}
