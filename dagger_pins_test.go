package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// generatedImports are the packages that the engine's Go code generation
// imports in dagger.gen.go and internal/dagger besides the SDK (Dagger
// v0.21.8). The offline stand-ins import them too, so that go build sees
// the dependency graph the engine sees.
var generatedImports = []string{
	"github.com/dagger/otel-go",
	"go.opentelemetry.io/otel",
	"go.opentelemetry.io/otel/propagation",
	"go.opentelemetry.io/otel/trace",
}

// goMod is what go mod edit -json prints of a go.mod.
type goMod struct {
	Require []struct{ Path, Version string }
	Replace []struct {
		Old, New struct{ Path, Version string }
	}
}

func readGoMod(t *testing.T, dir, file string) goMod {
	t.Helper()
	cmd := exec.Command("go", "mod", "edit", "-json", file)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod edit -json %s: %v", file, err)
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTheOfflineStandInImportsWhatTheEngineGenerates: both modules (this
// one and tests/) pin what the engine's code generation needs, so that
// the engine's go mod tidy finds nothing to choose: the SDK at the
// engineVersion of dagger.json, github.com/dagger/otel-go, and every
// replace directive of the SDK's own go.mod, which the engine adds. The
// offline stand-ins import every package the generated code imports, so
// the offline build compiles that graph.
func TestTheOfflineStandInImportsWhatTheEngineGenerates(t *testing.T) {
	for _, dir := range []string{".", "tests"} {
		t.Run(dir, func(t *testing.T) {
			var cfg struct{ EngineVersion string }
			raw, err := os.ReadFile(filepath.Join(dir, "dagger.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			ours := readGoMod(t, dir, "go.mod")
			required := map[string]string{}
			for _, r := range ours.Require {
				required[r.Path] = r.Version
			}
			if v := required["dagger.io/dagger"]; v != cfg.EngineVersion {
				t.Errorf("go.mod requires dagger.io/dagger %q, dagger.json's engineVersion is %s", v, cfg.EngineVersion)
			}
			if required["github.com/dagger/otel-go"] == "" {
				t.Errorf("go.mod does not require github.com/dagger/otel-go: the engine's go mod tidy would take its newest version, whatever it needs that day")
			}

			dl := exec.Command("go", "mod", "download", "-json", "dagger.io/dagger@"+cfg.EngineVersion)
			dl.Dir = dir
			out, err := dl.Output()
			if err != nil {
				t.Fatalf("go mod download dagger.io/dagger@%s: %v", cfg.EngineVersion, err)
			}
			var mod struct{ GoMod string }
			if err := json.Unmarshal(out, &mod); err != nil {
				t.Fatal(err)
			}
			sdk := readGoMod(t, dir, mod.GoMod)
			if len(sdk.Replace) == 0 {
				t.Fatalf("the SDK's go.mod (%s) has no replace directives: read it anew", mod.GoMod)
			}
			for _, want := range sdk.Replace {
				found := false
				for _, got := range ours.Replace {
					found = found || got == want
				}
				if !found {
					t.Errorf("go.mod lacks the SDK's replace %s => %s %s", want.Old.Path, want.New.Path, want.New.Version)
				}
			}

			list := exec.Command("go", "list", "-tags", "dagger_offline", "-deps", "./internal/dagger")
			list.Dir = dir
			out, err = list.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			deps := strings.Fields(string(out))
			for _, p := range generatedImports {
				if !slices.Contains(deps, p) {
					t.Errorf("the offline stand-in in %s/internal/dagger does not import %s", dir, p)
				}
			}
		})
	}
}
