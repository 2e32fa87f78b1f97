// Package quadlets renders podman quadlet units: a .container file and the
// drop-ins that refine it. Output is exact systemd syntax (one "Key=Value" per
// line, repeated keys kept, nothing padded or quoted behind the caller's back),
// written with gopkg.in/ini.v1.
//
// The types follow the rules that bootc applies to logically bound images:
// only a Container carries Image=, and a DropIn has no way to set one.
package quadlets

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/ini.v1"
)

func init() {
	// ini.v1 aligns "=" with spaces unless told otherwise; systemd reads the
	// padding as part of the key.
	ini.PrettyFormat = false
	ini.PrettyEqual = false
}

// Env is one environment variable passed to the container.
type Env struct {
	Name  string
	Value string
}

// Container is a quadlet .container unit.
type Container struct {
	// Description goes to [Unit] Description=.
	Description string
	// Image is the fully qualified image reference.
	Image string
	// Name is the container name (ContainerName=).
	Name string
	// GlobalArgs are podman options placed before "run".
	GlobalArgs []string
	// Network is the network mode (Network=), for example "host".
	Network string
	// PodmanArgs are extra "podman run" options that quadlet has no key for.
	PodmanArgs []string
	// SecurityLabelDisable turns SELinux separation off for the container.
	SecurityLabelDisable bool
	// Volumes are "host:container[:options]" bind mounts.
	Volumes []string
	// PublishPorts are "host:container" port mappings.
	PublishPorts []string
	// Env is set with Environment=, in order.
	Env []Env
	// Secrets are podman secrets mounted into the container (Secret=), as
	// "name,type=mount,target=...,uid=...,mode=...".
	Secrets []string
	// Exec is the command line passed to the image's entrypoint.
	Exec []string
	// Asserts are files that must exist and not be empty for the unit to
	// start (AssertFileNotEmpty=): systemd refuses the start and names the
	// file, instead of restarting a container that cannot work.
	Asserts []string
	// ExecStartPre are commands that run before the container starts.
	ExecStartPre [][]string
	// StopTimeout is the seconds that podman gives the container between
	// SIGTERM and SIGKILL when the unit stops (StopTimeout=, podman's
	// --stop-timeout); empty is podman's 10.
	StopTimeout string
	// Restart is the service's Restart= policy.
	Restart string
	// TimeoutStartSec bounds the start, image pull included;
	// TimeoutStopSec the stop, which must leave room for StopTimeout:
	// systemd kills the unit's processes after it (90 s by default).
	TimeoutStartSec, TimeoutStopSec string
	// WantedBy lists the targets that start the unit at boot.
	WantedBy []string
}

// DropIn is a <unit>.container.d/*.conf file. It can add environment
// variables but, by construction, never Image=: bootc reads the image of a
// bound container only from the unit file itself.
type DropIn struct {
	Env []Env
}

// entry is one line of a section; sections keep their entries in order.
type entry struct{ key, value string }

type section struct {
	name    string
	entries []entry
}

func (s *section) add(key string, values ...string) {
	for _, v := range values {
		s.entries = append(s.entries, entry{key, v})
	}
}

func (s *section) addIf(key, value string) {
	if value != "" {
		s.add(key, value)
	}
}

// Render returns the .container file.
func (c Container) Render() ([]byte, error) {
	if c.Image == "" {
		return nil, fmt.Errorf("quadlet %q: Image is required", c.Name)
	}
	unit := &section{name: "Unit"}
	unit.addIf("Description", c.Description)
	unit.add("AssertFileNotEmpty", c.Asserts...)

	ctr := &section{name: "Container"}
	ctr.add("Image", c.Image)
	ctr.addIf("ContainerName", c.Name)
	ctr.add("GlobalArgs", c.GlobalArgs...)
	ctr.addIf("Network", c.Network)
	ctr.add("PodmanArgs", c.PodmanArgs...)
	if c.SecurityLabelDisable {
		ctr.add("SecurityLabelDisable", "true")
	}
	ctr.add("Volume", c.Volumes...)
	ctr.add("PublishPort", c.PublishPorts...)
	ctr.add("Secret", c.Secrets...)
	env, err := envLines(c.Env)
	if err != nil {
		return nil, fmt.Errorf("quadlet %q: %w", c.Name, err)
	}
	ctr.add("Environment", env...)
	ctr.addIf("StopTimeout", c.StopTimeout)
	if len(c.Exec) > 0 {
		exec, err := words(c.Exec)
		if err != nil {
			return nil, fmt.Errorf("quadlet %q: Exec: %w", c.Name, err)
		}
		ctr.add("Exec", exec)
	}

	svc := &section{name: "Service"}
	for _, cmd := range c.ExecStartPre {
		line, err := words(cmd)
		if err != nil {
			return nil, fmt.Errorf("quadlet %q: ExecStartPre: %w", c.Name, err)
		}
		svc.add("ExecStartPre", line)
	}
	svc.addIf("Restart", c.Restart)
	svc.addIf("TimeoutStartSec", c.TimeoutStartSec)
	svc.addIf("TimeoutStopSec", c.TimeoutStopSec)

	install := &section{name: "Install"}
	install.add("WantedBy", c.WantedBy...)

	return write(c.Name, unit, ctr, svc, install)
}

// Render returns the drop-in file.
func (d DropIn) Render() ([]byte, error) {
	env, err := envLines(d.Env)
	if err != nil {
		return nil, err
	}
	ctr := &section{name: "Container"}
	ctr.add("Environment", env...)
	return write("drop-in", ctr)
}

func write(name string, sections ...*section) ([]byte, error) {
	f := ini.Empty(ini.LoadOptions{AllowShadows: true, IgnoreInlineComment: true})
	for _, s := range sections {
		if len(s.entries) == 0 {
			continue
		}
		sec, err := f.NewSection(s.name)
		if err != nil {
			return nil, err
		}
		for _, e := range s.entries {
			if err := checkValue(e.value); err != nil {
				return nil, fmt.Errorf("quadlet %q: %s=%q: %w", name, e.key, e.value, err)
			}
			if _, err := sec.NewKey(e.key, e.value); err != nil {
				return nil, err
			}
		}
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkValue refuses what ini.v1 would wrap in its own quotes (systemd would
// keep them) and what systemd would cut or expand.
func checkValue(v string) error {
	switch {
	case strings.TrimSpace(v) != v:
		return fmt.Errorf("leading or trailing white space")
	case strings.ContainsAny(v, "`"):
		return fmt.Errorf("a backquote")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("a control character")
		}
	}
	return nil
}

// unsafe are the characters that systemd would expand (% specifiers, $
// variables) or unquote (\ " ') on their way to podman's command line.
const unsafe = `%$\"'`

func envLines(env []Env) ([]string, error) {
	lines := make([]string, 0, len(env))
	for _, e := range env {
		if !validEnvName(e.Name) {
			return nil, fmt.Errorf("environment variable %q: not a valid name", e.Name)
		}
		if strings.ContainsAny(e.Value, unsafe) {
			return nil, fmt.Errorf("environment variable %s: value %q: the characters %s are not allowed", e.Name, e.Value, unsafe)
		}
		w, err := words([]string{e.Name + "=" + e.Value})
		if err != nil {
			return nil, fmt.Errorf("environment variable %s: %w", e.Name, err)
		}
		lines = append(lines, w)
	}
	return lines, nil
}

// words joins arguments the way systemd splits them: an argument with white
// space is double-quoted.
func words(args []string) (string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, unsafe) {
			return "", fmt.Errorf("argument %q: the characters %s are not allowed", a, unsafe)
		}
		if a == "" || strings.ContainsAny(a, " \t") {
			a = `"` + a + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " "), nil
}

func validEnvName(n string) bool {
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		return false
	}
	for _, r := range n {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
