package quadlets

import (
	"strings"
	"testing"

	"github.com/containers/podman/v5/pkg/systemd/parser"
)

func TestRenderWritesSystemdSyntaxThatPodmanReadsBack(t *testing.T) {
	c := Container{
		Description: "demo",
		Image:       "docker.io/library/busybox:1.36",
		Name:        "demo",
		GlobalArgs:  []string{"--storage-opt=additionalimagestore=/usr/lib/bootc/storage"},
		Volumes:     []string{"/a:/b", "/c:/d:ro"},
		Env: []Env{
			{"WITH_SPACES", "-Xms1g -Xmx1g"},
			{"WITH_COMMENT_CHARS", "a;b#c=d"},
			{"PLAIN", "x"},
		},
		Exec:     []string{"--flag=1", "two words"},
		WantedBy: []string{"multi-user.target"},
	}
	out, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), " = ") || strings.Contains(string(out), "`") {
		t.Errorf("ini padding or quoting leaked into the unit:\n%s", out)
	}
	u := parser.NewUnitFile()
	if err := u.Parse(string(out)); err != nil {
		t.Fatal(err)
	}
	env, err := u.LookupAllKeyVal("Container", "Environment")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Env {
		if v := env[e.Name]; v == nil || *v != e.Value {
			t.Errorf("%s reads back as %v, want %q", e.Name, v, e.Value)
		}
	}
	if got := u.LookupAll("Container", "Volume"); strings.Join(got, " ") != "/a:/b /c:/d:ro" {
		t.Errorf("repeated Volume= keys read back as %q", got)
	}
	exec, _, err := u.LookupLastArgs("Container", "Exec")
	if err != nil || strings.Join(exec, "|") != "--flag=1|two words" {
		t.Errorf("Exec reads back as %q (%v)", exec, err)
	}
}

func TestDropInHasOnlyEnvironment(t *testing.T) {
	out, err := DropIn{Env: []Env{{"KAFKA_NODE_ID", "1"}}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "[Container]\nEnvironment=KAFKA_NODE_ID=1\n" {
		t.Errorf("drop-in:\n%s", out)
	}
}

func TestRenderRefusesWhatSystemdWouldChange(t *testing.T) {
	bad := map[string]Container{
		"a specifier":      {Image: "i:1", Env: []Env{{"A", "50%"}}},
		"a variable":       {Image: "i:1", Env: []Env{{"A", "$HOME"}}},
		"a quote":          {Image: "i:1", Env: []Env{{"A", `say "hi"`}}},
		"a newline":        {Image: "i:1", Description: "two\nlines"},
		"a bad name":       {Image: "i:1", Env: []Env{{"1A", "x"}}},
		"trailing space":   {Image: "i:1", Description: "x "},
		"no image":         {Name: "x"},
		"a backquote exec": {Image: "i:1", Exec: []string{"`x`"}},
	}
	for name, c := range bad {
		if out, err := c.Render(); err == nil {
			t.Errorf("%s: rendered\n%s", name, out)
		}
	}
}
