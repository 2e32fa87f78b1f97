//go:build dagger_offline

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// docFiles are the project's Markdown documents.
func docFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md", "CONTRIBUTING.md"}, docs...)
}

// anchor is the anchor GitHub gives a heading: lower case, punctuation
// left out, spaces as hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestEveryLinkBetweenTheDocumentsLeadsSomewhere: each relative link
// names a file that exists, and a heading of it when it names one.
func TestEveryLinkBetweenTheDocumentsLeadsSomewhere(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchors := map[string]map[string]bool{}
	headings := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		a := map[string]bool{}
		data, _ := os.ReadFile(file)
		inCode := false
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "```") {
				inCode = !inCode
			}
			if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") && !inCode {
				a[anchor(h)] = true
			}
		}
		anchors[file] = a
		return a
	}
	checked := 0
	for _, doc := range docFiles(t) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), path)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link to %s: no such file", doc, target)
					continue
				}
			}
			checked++
			if frag != "" && !headings(file)[frag] {
				t.Errorf("%s: link to %s: %s has no heading #%s", doc, target, file, frag)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d links; the test misreads the documents", checked)
	}
}

var update = flag.Bool("update", false, "rewrite the README's generated parts")

// kebab is an argument's name as the Dagger CLI spells it.
func kebab(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteRune('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// argumentsTable is the README's table of the module's arguments, made
// from New's declaration: each argument, its default and the first
// sentence of its help.
func argumentsTable(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| argument | default | meaning |\n|---|---|---|\n")
	for _, p := range lookup(t, "New").params {
		if p.ctx {
			continue
		}
		def := "none"
		if p.typ == "bool" {
			def = "off"
		}
		if p.def != "" {
			var v any
			if err := json.Unmarshal([]byte(p.def), &v); err != nil {
				t.Fatal(err)
			}
			switch v := v.(type) {
			case string:
				def = "`" + v + "`"
			case []any:
				def = "`" + strings.Trim(fmt.Sprint(v...), "[]") + "`"
			default:
				def = fmt.Sprint(v)
			}
			if len(def) > 60 {
				def = "see `--help`"
			}
		}
		meaning, _, _ := strings.Cut(p.doc, ". ")
		meaning = strings.TrimSuffix(meaning, ".")
		meaning = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(meaning)
		fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", kebab(p.name), def, meaning)
	}
	return b.String()
}

// TestTheReadmesArgumentsAreTheModules: the table is generated from the
// constructor's declaration, so the defaults are written once, in main.go.
// After a change, regenerate it: go test -tags dagger_offline -run ModuleArguments -update.
func TestTheReadmesModuleArgumentsAreTheModules(t *testing.T) {
	const begin, end = "<!-- arguments: generated from main.go by go test -run ModuleArguments -update -->\n", "<!-- arguments end -->"
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no generated arguments table")
	}
	want := argumentsTable(t)
	if *update {
		os.WriteFile("README.md", []byte(text[:i+len(begin)]+want+text[j:]), 0o644)
		return
	}
	if got := text[i+len(begin) : j]; got != want {
		t.Errorf("README.md's arguments table is not the module's; regenerate it with -update:\n%s", want)
	}
}
