//go:build dagger_offline

package main

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	sdk "dagger.io/dagger"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/nodes"
)

// args are New's arguments, filled with the defaults its pragmas declare.
type args struct {
	registry, tag, name, clusterID, domain                          string
	brokers, controllers                                            int
	brokerIDs, controllerIDs                                        []int
	baseImage, kafkaImage, exporterImage                            string
	brokerMemory, controllerMemory, brokerHeap, controllerHeap      int
	brokerCPUs, controllerCPUs, brokerPort, controllerPort, expPort int
	metricsPort                                                     int
	brokerSettings, controllerSettings                              []string
	diskUser                                                        string
	sshKey                                                          []string
	rootSize, dataSize                                              int
	diskType                                                        []string
	builderImage                                                    string
}

// pragmaDefaults reads the "+default=" pragma of every New argument in
// main.go: what the CLI fills in when a user gives nothing.
func pragmaDefaults(t *testing.T) map[string]any {
	t.Helper()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\t// \+default=(.*)\n\t(\w+) `)
	out := map[string]any{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		var v any
		if err := json.Unmarshal([]byte(m[1]), &v); err != nil {
			t.Fatalf("argument %s: +default=%s is not JSON: %v", m[2], m[1], err)
		}
		out[m[2]] = v
	}
	return out
}

func defaults(t *testing.T) args {
	d := pragmaDefaults(t)
	str := func(k string) string { s, _ := d[k].(string); return s }
	num := func(k string) int { f, _ := d[k].(float64); return int(f) }
	list := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	return args{
		tag: str("tag"), name: str("name"), brokers: num("brokers"), controllers: num("controllers"),
		baseImage: str("baseImage"), kafkaImage: str("kafkaImage"), exporterImage: str("exporterImage"),
		brokerMemory: num("brokerMemory"), controllerMemory: num("controllerMemory"),
		brokerCPUs: num("brokerCpus"), controllerCPUs: num("controllerCpus"),
		brokerPort: num("brokerPort"), controllerPort: num("controllerPort"), expPort: num("exporterPort"),
		metricsPort: num("metricsPort"),
		diskUser:    str("diskUser"), rootSize: num("rootSize"), diskType: list("diskType"),
		builderImage: str("builderImage"),
	}
}

func callNew(a args) (*KafkaBootc, error) {
	return New(a.registry, a.tag, a.name, a.clusterID, a.domain, a.brokers, a.controllers, a.brokerIDs, a.controllerIDs,
		a.baseImage, a.kafkaImage, a.exporterImage, a.brokerMemory, a.controllerMemory, a.brokerHeap, a.controllerHeap,
		a.brokerCPUs, a.controllerCPUs, a.brokerPort, a.controllerPort, a.expPort, a.metricsPort, a.brokerSettings, a.controllerSettings,
		a.diskUser, a.sshKey, a.rootSize, a.dataSize, a.diskType, a.builderImage)
}

func TestCLIDefaultsAreTheModelDefaults(t *testing.T) {
	m, err := callNew(defaults(t))
	if err != nil {
		t.Fatalf("New with the CLI defaults: %v", err)
	}
	var got nodes.Spec
	if err := json.Unmarshal([]byte(m.Spec), &got); err != nil {
		t.Fatal(err)
	}
	want := nodes.Default()
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("dagger call with no arguments describes\n %s\nbut nodes.Default() is\n %s", gotJSON, wantJSON)
	}
	if m.Builder != bib.DefaultBuilder {
		t.Errorf("builder %q, want %q", m.Builder, bib.DefaultBuilder)
	}
}

func TestNewRejectsBadInputWithTheModelsError(t *testing.T) {
	a := defaults(t)
	a.brokers = 0
	if _, err := callNew(a); err == nil || !strings.HasPrefix(err.Error(), "brokers: 0: must be from 1 to 99") {
		t.Errorf("zero brokers: %v", err)
	}
	a = defaults(t)
	a.builderImage = "bootc-image-builder"
	if _, err := callNew(a); err == nil || !strings.HasPrefix(err.Error(), "builder image: ") {
		t.Errorf("unqualified builder image: %v", err)
	}
}

// TestEveryFunctionAndArgumentIsDocumented: doc comments are the CLI's help
// text (dagger functions, dagger call X --help).
func TestEveryFunctionAndArgumentIsDocumented(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile("main.go")
	lines := strings.Split(string(src), "\n")
	functions := 0
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || !fn.Name.IsExported() || (fn.Recv == nil && fn.Name.Name != "New") {
			continue
		}
		functions++
		if fn.Doc == nil {
			t.Errorf("function %s has no doc comment", fn.Name.Name)
		}
		for _, p := range fn.Type.Params.List {
			if id, ok := p.Type.(*ast.SelectorExpr); ok && id.Sel.Name == "Context" {
				continue
			}
			line := fset.Position(p.Pos()).Line - 1
			// The argument's comment ends on the line above it; pragmas
			// alone are not help text.
			documented := false
			for i := line - 1; i >= 0 && strings.HasPrefix(strings.TrimSpace(lines[i]), "//"); i-- {
				if !strings.HasPrefix(strings.TrimSpace(lines[i]), "// +") {
					documented = true
				}
			}
			if !documented {
				t.Errorf("%s: argument %s has no doc comment", fn.Name.Name, p.Names[0].Name)
			}
		}
	}
	if functions < 7 {
		t.Errorf("found %d functions; the parser missed some", functions)
	}
}

// engine connects to a Dagger engine when this test runs inside a Dagger
// session (dagger run go test -tags dagger_offline ./...), and skips
// otherwise: the SDK would download and start an engine by itself.
func engine(t *testing.T) {
	t.Helper()
	if os.Getenv("DAGGER_SESSION_PORT") == "" || os.Getenv("DAGGER_SESSION_TOKEN") == "" {
		t.Skip("skipped: no Dagger engine session (run under `dagger run` to include it)")
	}
	c, err := sdk.Connect(context.Background(), sdk.WithLogOutput(os.Stderr))
	if err != nil {
		t.Fatalf("connect to the Dagger session: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	dag = c
}

// TestConfigExportsTheGoldenTreeOnAnEngine: dagger call config -o DIR
// gives the tree kept in tests/golden/default.
func TestConfigExportsTheGoldenTreeOnAnEngine(t *testing.T) {
	engine(t)
	a := defaults(t)
	a.sshKey = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh admin@example.com"}
	m, err := callNew(a)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := m.Config()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rendered")
	if _, err := dir.Export(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	got, err := nodes.ReadTree(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := nodes.ReadTree("tests/golden/default")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("exported %d entries, golden has %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Path != want[i].Path || got[i].Target != want[i].Target || string(got[i].Content) != string(want[i].Content) {
			t.Errorf("%s differs from the golden tree", got[i].Path)
		}
	}
}

// TestWorkflowRunsTheModulesEngineVersion: the CI workflow installs the
// Dagger version that dagger.json (of the module and of its tests) names.
func TestWorkflowRunsTheModulesEngineVersion(t *testing.T) {
	wf, err := os.ReadFile(".github/workflows/ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+DAGGER_VERSION: "([^"]+)"$`).FindSubmatch(wf)
	if m == nil {
		t.Fatal("ci.yml sets no DAGGER_VERSION")
	}
	for _, path := range []string{"dagger.json", "tests/dagger.json"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			EngineVersion string `json:"engineVersion"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if cfg.EngineVersion != "v"+string(m[1]) {
			t.Errorf("%s: engineVersion %s, but the workflow installs Dagger %s", path, cfg.EngineVersion, m[1])
		}
	}
}
