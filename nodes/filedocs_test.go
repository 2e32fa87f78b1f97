package nodes

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"dagger/kafka-bootc/bib"

	"go.yaml.in/yaml/v3"
)

// fieldDocs reads the doc comment of every field of the cluster file's
// types from file.go: the text that the schema and the default file give
// each key.
func fieldDocs(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "file.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		docs[ts.Name.Name] = map[string]string{}
		for _, fld := range st.Fields.List {
			if fld.Doc != nil {
				docs[ts.Name.Name][fld.Names[0].Name] = strings.Join(strings.Fields(fld.Doc.Text()), " ")
			}
		}
		return false
	})
	return docs
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// schemaOf is the JSON Schema of a cluster file type, with each key's
// description and default.
func schemaOf(t *testing.T, typ reflect.Type, def reflect.Value, docs map[string]map[string]string) map[string]any {
	typ = deref(typ)
	for def.Kind() == reflect.Pointer {
		def = def.Elem()
	}
	props := map[string]any{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := yamlKey(f)
		ft := deref(f.Type)
		p := map[string]any{}
		if d := docs[typ.Name()][f.Name]; d != "" {
			p["description"] = d
		} else {
			t.Errorf("%s.%s has no doc comment: the schema and the default file need one", typ.Name(), f.Name)
		}
		switch ft.Kind() {
		case reflect.String:
			p["type"] = "string"
			if e := f.Tag.Get("enum"); e != "" {
				p["enum"] = strings.Split(e, ",")
			}
			if e := f.Tag.Get("pattern"); e != "" {
				p["pattern"] = e
			}
		case reflect.Int:
			p["type"] = "integer"
			for _, b := range []string{"minimum", "maximum"} {
				if v := f.Tag.Get(b); v != "" {
					n, _ := strconv.Atoi(v)
					p[b] = n
				}
			}
		case reflect.Bool:
			p["type"] = "boolean"
		case reflect.Slice:
			item := "string"
			if ft.Elem().Kind() == reflect.Int {
				item = "integer"
			}
			p["type"], p["items"] = "array", map[string]any{"type": item}
		case reflect.Map:
			p["type"], p["additionalProperties"] = "object", map[string]any{"type": []string{"string", "number", "boolean"}}
		case reflect.Struct:
			for k, v := range schemaOf(t, ft, def.Field(i), docs) {
				p[k] = v
			}
		}
		if ft.Kind() != reflect.Struct && def.IsValid() {
			if v := def.Field(i); !(v.Kind() == reflect.Pointer && v.IsNil()) {
				p["default"] = reflect.Indirect(v).Interface()
			}
		}
		if key == "version" {
			p = map[string]any{"description": p["description"], "const": FileVersion}
		}
		props[key] = p
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}

// defaultFileText writes the default cluster file: every key, its
// documentation as comments, and its default.
func defaultFileText(t *testing.T, docs map[string]map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(`# yaml-language-server: $schema=./kafka-cluster.schema.json
# The kafka-bootc cluster file: everything that describes the cluster, read
# by every command (dagger call --cluster ./kafka-cluster.yaml ...). Every
# key is here with its default; delete the ones you keep as they are. Keys
# left out take their defaults. Secrets never go here: they are flags.

`)
	var write func(v reflect.Value, typ reflect.Type, indent string)
	write = func(v reflect.Value, typ reflect.Type, indent string) {
		for v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if i > 0 && indent == "" {
				b.WriteString("\n")
			}
			for _, line := range wrap(docs[typ.Name()][f.Name], 76-len(indent)) {
				b.WriteString(indent + "# " + line + "\n")
			}
			key := yamlKey(f)
			fv := reflect.Indirect(v.Field(i))
			if deref(f.Type).Kind() == reflect.Struct {
				b.WriteString(indent + key + ":\n")
				write(fv, deref(f.Type), indent+"  ")
				continue
			}
			node := &yaml.Node{}
			if err := node.Encode(fv.Interface()); err != nil {
				t.Fatal(err)
			}
			node.Style = yaml.FlowStyle
			if node.Kind == yaml.ScalarNode {
				node.Style = 0
			}
			text, err := yaml.Marshal(node)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(indent + key + ": " + strings.TrimSpace(string(text)) + "\n")
		}
	}
	write(reflect.ValueOf(FileOf(Default(), bib.DefaultBuilder)), reflect.TypeOf(ClusterFile{}), "")
	return b.Bytes()
}

func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// TestClusterFileDocsAreTheTypes: the default file that init writes and
// the JSON Schema are generated from the types and their comments, and
// kept in the repository; regenerate them with -update.
func TestClusterFileDocsAreTheTypes(t *testing.T) {
	docs := fieldDocs(t)
	schema := schemaOf(t, reflect.TypeOf(ClusterFile{}), reflect.ValueOf(FileOf(Default(), bib.DefaultBuilder)), docs)
	schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	schema["title"] = "kafka-bootc cluster file"
	schema["description"] = "kafka-cluster.yaml: everything that describes a kafka-bootc cluster. Generated from the module's nodes.ClusterFile type."
	schema["required"] = []string{"version"}
	wantSchema, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	wantSchema = append(wantSchema, '\n')
	wantFile := defaultFileText(t, docs)
	if *update {
		os.WriteFile("kafka-cluster.schema.json", wantSchema, 0o644)
		os.WriteFile("kafka-cluster.yaml", wantFile, 0o644)
		return
	}
	if !bytes.Equal(FileSchema, wantSchema) {
		t.Errorf("kafka-cluster.schema.json is not the types'; regenerate it with -update")
	}
	if !bytes.Equal(DefaultFile, wantFile) {
		t.Errorf("kafka-cluster.yaml is not the types'; regenerate it with -update:\n%s", wantFile)
	}
}

// TestTheDefaultFileIsTheDefaultCluster: init's file, read back, is the
// default cluster, byte for byte as its golden tree.
func TestTheDefaultFileIsTheDefaultCluster(t *testing.T) {
	s, builder, err := ReadFile("kafka-cluster.yaml", DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(s)
	want, _ := json.Marshal(Default())
	if string(got) != string(want) || builder != bib.DefaultBuilder {
		t.Errorf("init's file gives\n %s\nnot\n %s", got, want)
	}
	var schema map[string]any
	if err := json.Unmarshal(FileSchema, &schema); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	// Every key of the schema is in the file, and no other.
	var root yaml.Node
	if err := yaml.Unmarshal(DefaultFile, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(props map[string]any, n *yaml.Node, path string)
	walk = func(props map[string]any, n *yaml.Node, path string) {
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			seen[k] = true
			p, ok := props[k].(map[string]any)
			if !ok {
				t.Errorf("%s%s: in the file, not in the schema", path, k)
				continue
			}
			if sub, ok := p["properties"].(map[string]any); ok {
				walk(sub, n.Content[i+1], path+k+".")
			}
		}
		for k := range props {
			if !seen[k] {
				t.Errorf("%s%s: in the schema, not in the file", path, k)
			}
		}
	}
	walk(schema["properties"].(map[string]any), root.Content[0], "")
}
