package nodes

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containers/podman/v5/pkg/systemd/parser"
	"github.com/containers/podman/v5/pkg/systemd/quadlet"
)

// exampleKey is an SSH public key made up for the tests and the golden tree.
const exampleKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh admin@example.com"

// exampleSpec is the default cluster with the example SSH key.
func exampleSpec() Spec {
	s := Default()
	s.Disk.SSHKeys = []string{exampleKey}
	return s
}

func plan(t testing.TB, s Spec) *Cluster {
	t.Helper()
	c, err := Plan(s)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return c
}

// service is a quadlet as systemd would see it after podman's generator ran.
type service struct {
	unit *parser.UnitFile
	// podman is ExecStart's command line, split as systemd splits it.
	podman []string
}

// convert runs podman's quadlet converter on a .container file and the
// drop-ins of a node image, merged in the generator's order.
func convert(t *testing.T, name string, unit []byte, dropins ...[]byte) service {
	t.Helper()
	f := parser.NewUnitFile()
	if err := f.Parse(string(unit)); err != nil {
		t.Fatalf("%s: parse: %v", name, err)
	}
	f.Filename = name
	f.Path = path.Join(quadletDir, name)
	for i, d := range dropins {
		df := parser.NewUnitFile()
		if err := df.Parse(string(d)); err != nil {
			t.Fatalf("%s drop-in %d: parse: %v", name, i, err)
		}
		f.Merge(df)
	}
	info := map[string]*quadlet.UnitInfo{name: {
		ServiceName:  strings.TrimSuffix(name, ".container"),
		ResourceName: strings.TrimSuffix(name, ".container"),
	}}
	svc, warn, err := quadlet.ConvertContainer(f, info, false)
	if err != nil {
		t.Fatalf("%s: quadlet: %v", name, err)
	}
	if warn != nil {
		t.Errorf("%s: quadlet warns: %v", name, warn)
	}
	args, ok, err := svc.LookupLastArgs(quadlet.ServiceGroup, "ExecStart")
	if !ok || err != nil {
		t.Fatalf("%s: no ExecStart: %v", name, err)
	}
	return service{unit: svc, podman: args}
}

// flag returns the values of a podman run flag, in both "--f v" and
// "--f=v" forms, from the part of the command line after "run".
func (s service) flag(name string) []string {
	run := slices.Index(s.podman, "run")
	var vals []string
	args := s.podman[run+1:]
	for i := 0; i < len(args); i++ {
		if args[i] == name && i+1 < len(args) {
			vals = append(vals, args[i+1])
			i++
		} else if v, ok := strings.CutPrefix(args[i], name+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// env is the container's environment as podman receives it.
func (s service) env() map[string]string {
	env := map[string]string{}
	for _, kv := range s.flag("--env") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// nodeService converts the Kafka quadlet of a node: its role image's unit
// with the node image's drop-in.
func nodeService(t *testing.T, c *Cluster, n Node) service {
	t.Helper()
	role, err := c.RoleImage(n.Role)
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.NodeImage(n)
	if err != nil {
		t.Fatal(err)
	}
	unit := n.Role.Unit() + ".container"
	base := fileOf(t, role, path.Join(quadletDir, unit))
	drop := fileOf(t, node, path.Join(quadletDir, unit+".d", dropIn))
	return convert(t, unit, base, drop)
}

func fileOf(t *testing.T, img Image, p string) []byte {
	t.Helper()
	for _, f := range img.Files {
		if f.Path == p {
			return f.Content
		}
	}
	t.Fatalf("%s: no file %s", img.Name, p)
	return nil
}

func TestKafkaQuadletRunsWithBoundStorageDataVolumeAndPorts(t *testing.T) {
	c := plan(t, exampleSpec())
	for _, n := range c.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			s := nodeService(t, c, n)
			want := []string{"/usr/bin/podman", boundStorage, "run"}
			if !slices.Equal(s.podman[:3], want) {
				t.Errorf("command starts %q, want %q: the bound image store must be a global option", s.podman[:3], want)
			}
			wantVolumes := []string{hostLogDir + ":" + LogDir, c.jmxHostDir() + ":" + jmxContainerDir + ":ro"}
			image := len(s.podman) - 1
			if n.Role == Controller && c.Dynamic {
				// kafka-bootc's start, read-only, is the command after
				// the image (TestADynamicQuorumsRendering).
				wantVolumes = append(wantVolumes, controllerStartHostDir()+":"+controllerStartDir+":ro")
				image = slices.Index(s.podman, c.KafkaImage)
			}
			if got := s.flag("-v"); !slices.Equal(got, wantVolumes) {
				t.Errorf("volumes %q, want %q: the host data directory and the JMX exporter, read-only", got, wantVolumes)
			}
			port := c.Roles[n.Role].Port
			wantPorts := []string{fmt.Sprintf("%d:%d", port, port), fmt.Sprintf("%d:%d", c.MetricsPort, c.MetricsPort)}
			if got := s.flag("--publish"); !slices.Equal(got, wantPorts) {
				t.Errorf("published ports %q, want %q", got, wantPorts)
			}
			if image < 0 || s.podman[image] != c.KafkaImage || n.Role == Broker && image != len(s.podman)-1 {
				t.Errorf("podman run %q: want the image %q last, or before a dynamic controller's start", s.podman, c.KafkaImage)
			}
			if !slices.Contains(s.podman, "--rm") {
				t.Errorf("quadlet no longer removes the container on stop; the data volume test assumes it does")
			}
		})
	}
}

func TestExporterQuadletSeesTheHost(t *testing.T) {
	c := plan(t, exampleSpec())
	for _, r := range Roles {
		img, err := c.RoleImage(r)
		if err != nil {
			t.Fatal(err)
		}
		unit := ExporterUnit + ".container"
		s := convert(t, unit, fileOf(t, img, path.Join(quadletDir, unit)))
		if !slices.Equal(s.podman[:3], []string{"/usr/bin/podman", boundStorage, "run"}) {
			t.Errorf("%s: command starts %q", r, s.podman[:3])
		}
		checks := map[string][]string{
			"--network":      {"host"},
			"--pid":          {"host"},
			"-v":             {"/:/host:ro,rslave"},
			"--security-opt": {"label=disable"},
		}
		for flag, want := range checks {
			if got := s.flag(flag); !slices.Equal(got, want) {
				t.Errorf("%s: %s = %q, want %q", r, flag, got, want)
			}
		}
		i := slices.Index(s.podman, c.ExporterImage)
		if i < 0 || !slices.Equal(s.podman[i+1:], []string{"--path.rootfs=/host", "--web.listen-address=:9100", "--web.config.file=" + ctrExporterWebConfig}) {
			t.Errorf("%s: exporter arguments after the image: %q", r, s.podman[i+1:])
		}
	}
}

// TestSystemdAcceptsTheGeneratedServices runs systemd-analyze verify on
// every service that quadlet generates for every node.
func TestSystemdAcceptsTheGeneratedServices(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("skipped: systemd-analyze is not installed (.ci/run installs it)")
	}
	if _, err := os.Stat("/usr/bin/podman"); err != nil {
		t.Skip("skipped: systemd-analyze verify needs /usr/bin/podman, the services' ExecStart (.ci/run installs it)")
	}
	c := plan(t, exampleSpec())
	dir := t.TempDir()
	var files []string
	write := func(name string, s service) {
		text, err := s.unit.ToString()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".service")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	for _, n := range c.Nodes {
		write(n.Name, nodeService(t, c, n))
	}
	img, err := c.RoleImage(Broker)
	if err != nil {
		t.Fatal(err)
	}
	unit := ExporterUnit + ".container"
	write(ExporterUnit, convert(t, unit, fileOf(t, img, path.Join(quadletDir, unit))))
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, files...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestKafkaGetsTimeForItsControlledShutdown: podman's converter gives the
// Kafka container a stop timeout long enough for a broker's controlled
// shutdown (podman's own default is 10 s), and systemd waits longer than
// podman does before it kills the unit (its default is 90 s).
func TestKafkaGetsTimeForItsControlledShutdown(t *testing.T) {
	c := plan(t, exampleSpec())
	for _, n := range c.Nodes {
		s := nodeService(t, c, n)
		if got := s.flag("--stop-timeout"); !slices.Equal(got, []string{strconv.Itoa(KafkaStopSeconds)}) {
			t.Errorf("%s: --stop-timeout %q, want %d", n.Name, got, KafkaStopSeconds)
		}
		stop, _ := s.unit.Lookup(quadlet.ServiceGroup, "TimeoutStopSec")
		if secs, err := strconv.Atoi(stop); err != nil || secs <= KafkaStopSeconds {
			t.Errorf("%s: TimeoutStopSec %q: systemd must wait longer than podman's %d s", n.Name, stop, KafkaStopSeconds)
		}
	}
}
