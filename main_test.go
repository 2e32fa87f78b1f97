//go:build dagger_offline

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	sdk "dagger.io/dagger"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
)

// param is one argument of a Dagger function as the module declares it.
type param struct {
	name string
	// def is the JSON of its +default pragma, or empty.
	def string
	// doc is its help text, pragmas left out.
	doc string
	// ctx marks the context.Context that Dagger passes, not an argument.
	ctx bool
	// typ is its Go type, as written.
	typ string
}

// function is New or a method of one of the module's objects, as the
// module's files declare it.
type function struct {
	name string
	// recv is the object's type, empty for New.
	recv   string
	doc    string
	params []param
	// file is the file that declares it, and src that file's text.
	file string
	src  []byte
}

// functions parses the module's Go files: New and every exported method,
// file by file.
func functions(t *testing.T) []function {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []function
	for _, name := range files {
		if !strings.HasSuffix(name, "_test.go") {
			out = append(out, fileFunctions(t, name)...)
		}
	}
	if len(out) < 7 {
		t.Fatalf("found %d functions in the module's files; the parser missed some", len(out))
	}
	return out
}

// fileFunctions parses one file of the module: New and every exported
// method it declares.
func fileFunctions(t *testing.T, name string) []function {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	var out []function
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || !fn.Name.IsExported() || (fn.Recv == nil && fn.Name.Name != "New") {
			continue
		}
		fun := function{name: fn.Name.Name, file: name, src: src}
		if fn.Recv != nil {
			if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok {
					fun.recv = id.Name
				}
			}
		}
		if fn.Doc != nil {
			fun.doc = fn.Doc.Text()
		}
		for _, p := range fn.Type.Params.List {
			if sel, ok := p.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Context" {
				fun.params = append(fun.params, param{name: p.Names[0].Name, ctx: true})
				continue
			}
			// The argument's comment is the run of comment lines above it.
			var doc []string
			def := ""
			for i := fset.Position(p.Pos()).Line - 2; i >= 0 && strings.HasPrefix(strings.TrimSpace(lines[i]), "//"); i-- {
				text := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[i]), "//"))
				if v, ok := strings.CutPrefix(text, "+default="); ok {
					def = v
				}
				if !strings.HasPrefix(text, "+") {
					doc = append([]string{text}, doc...)
				}
			}
			fun.params = append(fun.params, param{name: p.Names[0].Name, def: def, doc: strings.Join(doc, " "), typ: types.ExprString(p.Type)})
		}
		out = append(out, fun)
	}
	return out
}

func lookup(t *testing.T, name string) function {
	t.Helper()
	for _, f := range functions(t) {
		if f.name == name {
			return f
		}
	}
	t.Fatalf("the module has no function %s", name)
	return function{}
}

// call calls a function the way the Dagger CLI does: every argument that
// is not set gets its +default, or Go's zero value. A panic is returned as
// an error, so that a test can say which call panicked.
func call(t *testing.T, recv reflect.Value, fn function, set map[string]any) (out []reflect.Value, err error) {
	t.Helper()
	var f reflect.Value
	if fn.name == "New" {
		f = reflect.ValueOf(New)
	} else {
		f = recv.MethodByName(fn.name)
	}
	if f.Type().NumIn() != len(fn.params) {
		t.Fatalf("%s: %s declares %d arguments, the compiled function has %d", fn.name, fn.file, len(fn.params), f.Type().NumIn())
	}
	args := make([]reflect.Value, len(fn.params))
	for i, p := range fn.params {
		typ := f.Type().In(i)
		v := reflect.New(typ)
		switch {
		case p.ctx:
			v.Elem().Set(reflect.ValueOf(context.Background()))
		case set[p.name] != nil:
			v.Elem().Set(reflect.ValueOf(set[p.name]))
		case p.def != "":
			if err := json.Unmarshal([]byte(p.def), v.Interface()); err != nil {
				t.Fatalf("%s: argument %s: +default=%s is not a %s: %v", fn.name, p.name, p.def, typ, err)
			}
		}
		if _, zero := set[p.name]; zero && set[p.name] == nil {
			v.Elem().Set(reflect.Zero(typ))
		}
		args[i] = v.Elem()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	out = f.Call(args)
	if e, _ := out[len(out)-1].Interface().(error); e != nil {
		return out, e
	}
	return out, nil
}

// newModule calls New with the CLI's defaults and the given arguments.
func newModule(t *testing.T, set map[string]any) (*KafkaBootc, error) {
	t.Helper()
	out, err := call(t, reflect.Value{}, lookup(t, "New"), set)
	if err != nil {
		return nil, err
	}
	return out[0].Interface().(*KafkaBootc), nil
}

func TestCLIDefaultsAreTheModelDefaults(t *testing.T) {
	m, err := newModule(t, nil)
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

// moduleFor is the module for a cluster file's text, as New makes it
// from the file's contents.
func moduleFor(t *testing.T, file string) *KafkaBootc {
	t.Helper()
	s, builder, err := loadCluster("kafka-cluster.yaml", []byte(file), "", "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(s)
	return &KafkaBootc{Spec: string(spec), Builder: builder}
}

// TestTheFlagsApplyToTheClusterFile: --registry and --tag override the
// file's, and are checked by the same rules; a jar for an exporter that
// the file leaves out is refused.
func TestTheFlagsApplyToTheClusterFile(t *testing.T) {
	noJMX := "version: 1\nmetrics:\n  jmxExporter:\n    enabled: false\n"
	for _, tc := range []struct {
		name, file, registry, tag string
		jar                       bool
		want                      string
	}{
		{"a jar for an exporter that is left out", noJMX, "", "", true,
			"jmx exporter jar: given, but kafka-cluster.yaml leaves the JMX exporter out (metrics.jmxExporter.enabled: false); give one or the other"},
		{"a registry that is none", "", "https://quay.io/me", "", false, "registry \"https://quay.io/me\": "},
		{"a tag that is none", "", "", "-v1", false, "tag \"-v1\": "},
		{"a file that breaks a rule", "version: 1\nbrokers:\n  count: 0\n", "", "", false,
			"kafka-cluster.yaml:3 (brokers.count): brokers: 0: must be from 1 to 99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := loadCluster("kafka-cluster.yaml", []byte(tc.file), tc.registry, tc.tag, "", tc.jar); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	s, _, err := loadCluster("kafka-cluster.yaml", []byte("version: 1\nregistry: quay.io/me\ntag: v1\n"), "ghcr.io/you", "v2", "", false)
	if err != nil || s.Registry != "ghcr.io/you" || s.Tag != "v2" {
		t.Errorf("overrides: %v %s %s", err, s.Registry, s.Tag)
	}
}

func TestNoJMXExporterLeavesTheExporterOut(t *testing.T) {
	m := moduleFor(t, "version: 1\nmetrics:\n  jmxExporter:\n    enabled: false\n")
	c, err := m.cluster()
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.RoleImage(nodes.Broker)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsPort != 0 || len(img.Downloads) != 0 {
		t.Errorf("metrics.jmxExporter.enabled false: metrics port %d, downloads %+v", c.MetricsPort, img.Downloads)
	}
}

// TestEveryDocumentedValueIsReachableFromGo: the Go SDK leaves out an
// optional argument that holds Go's zero value, and the default applies.
// So no argument may give its zero value a meaning other than its default:
// where the default is not zero, the zero must be refused (the CLI can
// still send it), and a bool must default to false, or no Go caller could
// ever send false.
func TestEveryDocumentedValueIsReachableFromGo(t *testing.T) {
	m := moduleFor(t, "version: 1\nregistry: quay.io/me\ndisk:\n  sshKeys: [\""+testSSHKey+"\"]\n")
	receivers := map[string]reflect.Value{
		"KafkaBootc": reflect.ValueOf(m),
		"Running":    reflect.ValueOf(&Running{Parent: m}),
		"Lab":        reflect.ValueOf(&Lab{Parent: m, Accel: "auto"}),
	}
	zeroMeaning := regexp.MustCompile(`(?i)\b(0|zero|empty|none|false)\b (means|leaves|turns|disables|removes)`)
	checked := 0
	for _, fn := range functions(t) {
		for _, p := range fn.params {
			if p.ctx || p.def == "" {
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(p.def), &v); err != nil {
				t.Fatalf("%s: argument %s: +default=%s is not JSON: %v", fn.name, p.name, p.def, err)
			}
			if b, ok := v.(bool); ok {
				if b {
					t.Errorf("%s: argument %s defaults to true: a Go caller cannot send false; make it a --no-... flag that defaults to false", fn.name, p.name)
				}
				continue
			}
			if v == nil || v == "" || v == 0.0 || (reflect.TypeOf(v).Kind() == reflect.Slice && reflect.ValueOf(v).Len() == 0) {
				continue
			}
			checked++
			if zeroMeaning.MatchString(p.doc) {
				t.Errorf("%s: argument %s defaults to %s, yet its help gives its zero value a meaning: %q", fn.name, p.name, p.def, p.doc)
			}
			recv, ok := receivers[fn.recv]
			if fn.recv != "" && !ok {
				t.Fatalf("%s: no receiver of type %s to call it on; add one", fn.name, fn.recv)
			}
			if _, err := call(t, recv, fn, map[string]any{p.name: nil}); err == nil {
				t.Errorf("%s: argument %s: its zero value is accepted, but from Go it is never sent and the default %s applies instead", fn.name, p.name, p.def)
			} else if strings.HasPrefix(err.Error(), "panic:") {
				t.Errorf("%s: argument %s set to its zero value: %v", fn.name, p.name, err)
			}
		}
	}
	if checked < 8 {
		t.Errorf("checked %d arguments with a non-zero default; the parser missed some", checked)
	}
}

// TestEveryFunctionStatesItsCachePolicy: Dagger keeps a function's result
// for a week unless the function says otherwise. Those that depend on
// the world (a registry they write to, tags that move) must say so, and
// say why in their help; those that depend on their arguments only keep
// the default.
func TestEveryFunctionStatesItsCachePolicy(t *testing.T) {
	want := map[string]string{
		"New":               "",        // validates its arguments, nothing else
		"Config":            "",        // renders files from the arguments
		"Ca":                "never",   // makes a new key
		"Client":            "never",   // the same
		"Base":              "session", // starts from the base image's tag
		"NodeImage":         "session", // the same
		"BuildAll":          "never",   // writes to a registry
		"Disks":             "session", // base, bound and builder images' tags
		"Disk":              "session", // the same
		"Running":           "",        // checks its arguments, nothing else
		"WithRegistryAuth":  "",        // the same
		"Init":              "",        // depends on nothing
		"Health":            "never",   // reads running machines
		"Rollout":           "never",   // changes running machines
		"RenewCertificates": "never",   // the same
		"Finalize":          "never",   // the same
		"Quorum":            "never",   // the same
		"Trust":             "never",   // the same
		"Lab":               "",        // checks its arguments and the disks
		"Smoke":             "never",   // boots machines
		"Service":           "session", // starts from the Kafka image's tag
		"Hosts":             "",        // depends on the cluster only
	}
	for _, fn := range functions(t) {
		policy, ok := want[fn.name]
		if !ok {
			t.Errorf("%s: no cache policy decided here; add it to this table", fn.name)
			continue
		}
		m := regexp.MustCompile(`(?m)^// \+cache="(\w+)"\n(?:// .*\n)*func (?:\(\w+ \*\w+\) )?` + fn.name + `\(`).FindSubmatch(fn.src)
		got := ""
		if m != nil {
			got = string(m[1])
		}
		if got != policy {
			t.Errorf("%s: cache policy %q, want %q", fn.name, got, policy)
		}
		if policy != "" && !strings.Contains(strings.ToLower(fn.doc), map[string]string{"session": "one session", "never": "never cached"}[policy]) {
			t.Errorf("%s: its help does not say why it is cached for %s", fn.name, policy)
		}
	}
}

const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh admin@example.com"

// TestEveryFunctionAndArgumentIsDocumented: doc comments are the CLI's help
// text (dagger functions, dagger call X --help).
func TestEveryFunctionAndArgumentIsDocumented(t *testing.T) {
	for _, fn := range functions(t) {
		if strings.TrimSpace(fn.doc) == "" {
			t.Errorf("function %s has no doc comment", fn.name)
		}
		for _, p := range fn.params {
			if !p.ctx && strings.TrimSpace(p.doc) == "" {
				t.Errorf("%s: argument %s has no doc comment", fn.name, p.name)
			}
		}
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
	m := moduleFor(t, "version: 1\ndisk:\n  sshKeys: [\""+testSSHKey+"\"]\n")
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

// TestNoFunctionHidesACoreField: the Dagger CLI installs a module's
// functions beside the core API's top-level fields, and loads file and
// directory arguments through one of them (node). A function of the same
// name hides the core field, and every such argument fails to load.
func TestNoFunctionHidesACoreField(t *testing.T) {
	query := reflect.TypeOf(&sdk.Query{})
	for _, fn := range functions(t) {
		if fn.name == "New" {
			continue
		}
		if _, clash := query.MethodByName(fn.name); clash {
			t.Errorf("function %s has the name of the core API's field %s", fn.name, strings.ToLower(fn.name[:1])+fn.name[1:])
		}
	}
}

// TestTheRollingOperationsRefuseBadArgumentsFirst: rollout, renewal and
// trust check their arguments before they reach any node.
func TestTheRollingOperationsRefuseBadArgumentsFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"a timeout of 0", func() error { _, err := rollingOptions(0, false); return err }(), "timeout 0: must be at least 1 second"},
		{"a threshold of 0 days", checkCertMinDays(0), "cert min days 0: must be from 1 to 36500"},
		{"a threshold past a century", checkCertMinDays(36501), "cert min days 36501: must be from 1 to 36500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || tc.err.Error() != tc.want {
				t.Errorf("%v, want %q", tc.err, tc.want)
			}
		})
	}
	o, err := rollingOptions(60, true)
	if err != nil || o.Timeout != time.Minute || !o.DryRun {
		t.Errorf("%+v, %v", o, err)
	}
	if err := checkCertMinDays(30); err != nil {
		t.Errorf("the default threshold: %v", err)
	}
}

// TestWithRegistryAuthKeepsOneLoginPerRegistry: a second login for a
// registry replaces the first, others stay, and an address that is not a
// registry host is refused by name.
func TestWithRegistryAuthKeepsOneLoginPerRegistry(t *testing.T) {
	m := &KafkaBootc{}
	var err error
	for _, l := range [][2]string{{"quay.io", "me"}, {"registry.example.com:5000", "ci"}, {"quay.io", "me+robot"}} {
		if m, err = m.WithRegistryAuth(l[0], l[1], &dagger.Secret{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(m.AuthAddresses, m.AuthUsernames, len(m.AuthSecrets)); got != "[registry.example.com:5000 quay.io] [ci me+robot] 2" {
		t.Errorf("logins %s", got)
	}
	for _, bad := range []string{"", "https://quay.io", "quay.io/me", "quay"} {
		if _, err := m.WithRegistryAuth(bad, "me", &dagger.Secret{}); err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("registry address %q: must be a registry host", bad)) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := m.WithRegistryAuth("quay.io", " ", &dagger.Secret{}); err == nil || err.Error() != "registry username: must not be empty" {
		t.Errorf("an empty user: %v", err)
	}
	if _, err := m.WithRegistryAuth("localhost", "me", &dagger.Secret{}); err != nil {
		t.Errorf("localhost: %v", err)
	}
}

// TestEveryPlaceTheReadmeWritesSecretsToIsIgnored: the examples of the
// README and the docs run in a checkout of the module, where git add . would commit a CA key and
// Dagger would load it into the engine with the module's files.
func TestEveryPlaceTheReadmeWritesSecretsToIsIgnored(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("skipped: git is not installed")
	}
	var readme []byte
	for _, doc := range docFiles(t) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		readme = append(readme, data...)
	}
	secret := regexp.MustCompile(`(?:file:|--authfile )\./([A-Za-z0-9_./-]+)`)
	keyed := regexp.MustCompile(`\b(?:ca|client --name \S+|disks|disk --node \S+)\b.* -o \./([A-Za-z0-9_-]+)`)
	paths := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		for _, m := range secret.FindAllStringSubmatch(line, -1) {
			paths[m[1]] = true
		}
		if m := keyed.FindStringSubmatch(line); m != nil {
			paths[m[1]+"/"] = true
		}
	}
	for _, want := range []string{"ca/ca.key", "auth.json", "admin/", "disk-images/"} {
		if !paths[want] {
			t.Errorf("the README no longer writes %s; the test misreads it: %v", want, paths)
		}
	}
	for p := range paths {
		if err := exec.Command(git, "check-ignore", "-q", "--no-index", p).Run(); err != nil {
			t.Errorf("the README writes a secret to %s, which .gitignore does not cover", p)
		}
	}
}

// TestRunningRefusesABadJumpHostFirst: a jump host that ssh -J would not
// take is refused before any node is reached.
func TestRunningRefusesABadJumpHostFirst(t *testing.T) {
	m, err := newModule(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Running(context.Background(), nil, nil, true, nil, nil, []string{"admin@bastion", "@bastion"}, "", "")
	if err == nil || err.Error() != `jump "@bastion": must be [USER@]HOST[:PORT], as ssh -J takes it` {
		t.Errorf("%v", err)
	}
	r, err := m.Running(context.Background(), nil, nil, true, []string{"kafka-broker-1=10.0.0.1"}, nil, []string{"admin@bastion:2222"}, "", "")
	if err != nil || r.Jump[0] != "admin@bastion:2222" || r.Parent != m {
		t.Errorf("%+v, %v", r, err)
	}
}

// TestTheWorkflowsMatrixAndSummary runs the workflow's scripts on
// build-all's output: one disk job per node published by digest, none (an
// empty list, which the disk job's condition checks) when nothing was;
// and the summary's table.
func TestTheWorkflowsMatrixAndSummary(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	out, err := nodes.FormatPublished(nodes.FormatJSON, []nodes.Published{
		{Node: "kafka-broker-1", Image: "quay.io/me/kafka-broker-1:latest@" + digest, Digest: digest, Signed: true, SBOM: true},
		nodes.PublishedAt("kafka-controller-1", "quay.io/me/kafka-controller-1:latest@"+digest),
	})
	if err != nil {
		t.Fatal(err)
	}
	script := func(name, input string) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "published.json")
		os.WriteFile(file, []byte(input), 0o644)
		got, err := exec.Command("sh", filepath.Join(".github", "scripts", name), file).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, got)
		}
		return string(got)
	}
	var matrix []map[string]string
	if err := json.Unmarshal([]byte(script("matrix.sh", out)), &matrix); err != nil {
		t.Fatal(err)
	}
	if len(matrix) != 2 || matrix[0]["node"] != "kafka-broker-1" || matrix[1]["image"] != "quay.io/me/kafka-controller-1:latest@"+digest {
		t.Errorf("matrix %v", matrix)
	}
	unpublished, _ := nodes.FormatPublished(nodes.FormatJSON, []nodes.Published{{Node: "kafka-broker-1"}, {Node: "kafka-controller-1"}})
	for _, nothing := range []string{"[]", unpublished} {
		if got := script("matrix.sh", nothing); got != "[]\n" {
			t.Errorf("matrix of %q: %q, want []", nothing, got)
		}
	}
	summary := script("summary.sh", out)
	for _, row := range []string{
		"| kafka-broker-1 | `quay.io/me/kafka-broker-1:latest` | `" + digest + "` | yes |",
		"| kafka-controller-1 | `quay.io/me/kafka-controller-1:latest` | `" + digest + "` | no |",
	} {
		if !strings.Contains(summary, row+"\n") {
			t.Errorf("summary lacks %s:\n%s", row, summary)
		}
	}
	wf, err := os.ReadFile(".github/workflows/ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(wf), "if: needs.publish.outputs.nodes != '[]'") {
		t.Error("the disk job runs on an empty matrix, which GitHub refuses")
	}
}

// TestSigningArgumentsAreCheckedAgainstEachOther: build-all's signing
// arguments, refused before anything is built.
func TestSigningArgumentsAreCheckedAgainstEachOther(t *testing.T) {
	plain, err := nodes.Plan(nodes.Default())
	if err != nil {
		t.Fatal(err)
	}
	s := nodes.Default()
	s.Registry = "quay.io/me"
	published, err := nodes.Plan(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                     string
		c                        *nodes.Cluster
		key, password, trustedPK bool
		want                     string
	}{
		{"a password without a key", published, false, true, false, "signing password: given without --signing-key"},
		{"a key without a registry", plain, true, false, false, "signing key: given for a cluster without a registry: only published images are signed"},
		{"a trusted key without a signing key", published, false, false, true, "trusted public key: it names the key the nodes trust during a rotation; give it with --signing-key and --signing-public-key"},
		{"a trusted key for nodes that trust none", published, true, false, true, "trusted public key: it names the key the nodes trust during a rotation; give it with --signing-key and --signing-public-key"},
		{"a key and its password", published, true, true, false, ""},
		{"nothing", plain, false, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSigningArgs(tc.c, tc.key, tc.password, tc.trustedPK)
			if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
}

// TestSigningToolsComeFromPinnedImages: by default sigstore's and
// anchore's released images, pinned by digest; a mirror's image must be
// pinned by digest too; images and --tools-from-source are for signing
// only, and not together.
func TestSigningToolsComeFromPinnedImages(t *testing.T) {
	cosign, syft, err := signingToolImages(true, false, "", "")
	if err != nil || cosign != nodes.DefaultCosignImage || syft != nodes.DefaultSyftImage {
		t.Errorf("defaults %q %q, %v", cosign, syft, err)
	}
	for _, ref := range []string{cosign, syft} {
		if !strings.Contains(ref, ":v") || !strings.Contains(ref, "@sha256:") {
			t.Errorf("%s: not pinned by a release tag and its digest", ref)
		}
	}
	mirror := "registry.example.com/mirror/cosign@sha256:" + strings.Repeat("ab", 32)
	if got, _, err := signingToolImages(true, false, mirror, ""); err != nil || got != mirror {
		t.Errorf("a mirror: %q, %v", got, err)
	}
	for _, tc := range []struct {
		signing, source bool
		cosign, syft    string
		want            string
	}{
		{true, false, "registry.example.com/mirror/cosign:v2.6.3", "", `cosign image "registry.example.com/mirror/cosign:v2.6.3": must be pinned by digest`},
		{true, false, "", "anchore/syft@sha256:" + strings.Repeat("cd", 32), `syft image: "anchore/syft@sha256:`},
		{false, false, mirror, "", "cosign image, syft image, tools from source: they choose the signing tools; give them with --signing-key"},
		{false, true, "", "", "cosign image, syft image, tools from source: they choose the signing tools"},
		{true, true, mirror, "", "tools from source: builds cosign and syft from their Go modules; leave --cosign-image and --syft-image out with it"},
	} {
		if _, _, err := signingToolImages(tc.signing, tc.source, tc.cosign, tc.syft); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error starting %q", tc, err, tc.want)
		}
	}
	if _, _, err := signingToolImages(true, true, "", ""); err != nil {
		t.Errorf("from source: %v", err)
	}
}

// TestEveryFunctionsHelpOpensWithOneSentence: dagger functions shows the
// first line of each description alone.
func TestEveryFunctionsHelpOpensWithOneSentence(t *testing.T) {
	for _, fn := range functions(t) {
		first, rest, _ := strings.Cut(fn.doc, "\n")
		if !strings.HasSuffix(first, ".") || len(first) > 78 || (rest != "" && !strings.HasPrefix(rest, "\n")) {
			t.Errorf("%s: its help opens with %q, not one short sentence on a line of its own", fn.name, first)
		}
	}
}

// TestTheWorkflowsClusterFile: the jobs build from the repository's own
// cluster file, or from the default cluster with the login key of the
// repository's variables, which the module reads as such.
func TestTheWorkflowsClusterFile(t *testing.T) {
	script, err := filepath.Abs(filepath.Join(".github", "scripts", "cluster-file.sh"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(dir, key string) (string, error) {
		cmd := exec.Command("sh", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SSH_PUBLIC_KEY="+key)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	dir := t.TempDir()
	out, err := run(dir, testSSHKey)
	if err != nil || out != "./kafka-cluster.yaml" {
		t.Fatalf("%v: %s", err, out)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "kafka-cluster.yaml"))
	s, _, err := nodes.ReadFile("kafka-cluster.yaml", data)
	if err != nil || len(s.Disk.SSHKeys) != 1 || s.Disk.SSHKeys[0] != testSSHKey {
		t.Errorf("the written file: %v %+v\n%s", err, s.Disk, data)
	}
	os.WriteFile(filepath.Join(dir, "kafka-cluster.yaml"), []byte("version: 1\nname: own\n"), 0o644)
	if _, err := run(dir, testSSHKey); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "kafka-cluster.yaml")); string(data) != "version: 1\nname: own\n" {
		t.Errorf("the repository's own file was replaced:\n%s", data)
	}
	if out, err := run(t.TempDir(), ""); err == nil || !strings.Contains(out, "no kafka-cluster.yaml and no SSH_PUBLIC_KEY variable") {
		t.Errorf("neither: %v %s", err, out)
	}
}

// TestTheDisksArgumentsAreCheckedFirst: the CA's arguments against the
// security mode, and what disks needs, each refused by name before
// anything is built.
func TestTheDisksArgumentsAreCheckedFirst(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		tls, cert, key, certOptions bool
		want                        string
	}{
		{"a CA for a plaintext cluster", false, true, true, false, "ca cert: given for a cluster built with security: plaintext"},
		{"--rotate for a plaintext cluster", false, false, false, true, "ca cert: given for a cluster built with security: plaintext"},
		{"a tls cluster without a CA", true, false, false, false, "ca cert: tls disks need the cluster CA"},
		{"a tls cluster without the key", true, true, false, false, "ca cert: tls disks need the cluster CA"},
		{"a tls cluster with its CA", true, true, true, true, ""},
		{"a plaintext cluster without one", false, false, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCAArgs(tc.tls, tc.cert, tc.key, tc.certOptions)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.HasPrefix(err.Error(), tc.want)) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
	plain, _ := nodes.Plan(nodes.Default())
	if err := checkDisksArgs(plain, 2); err == nil || !strings.HasPrefix(err.Error(), "registry: a disk needs the cluster file's registry") {
		t.Errorf("no registry: %v", err)
	}
	s := nodes.Default()
	s.Registry = "quay.io/me"
	published, _ := nodes.Plan(s)
	if err := checkDisksArgs(published, 0); err == nil || err.Error() != "parallel 0: must be at least 1" {
		t.Errorf("parallel 0: %v", err)
	}
}
