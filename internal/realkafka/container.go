package realkafka

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/containers/podman/v5/pkg/systemd/parser"
	"github.com/containers/podman/v5/pkg/systemd/quadlet"
)

// Container is what podman would run for a quadlet: read with podman's
// own quadlet converter from the unit and its drop-ins, as the node's
// systemd generator reads them.
type Container struct {
	// Env is the container's environment (--env), in order.
	Env []string
	// Volumes are host:container[:options] bind mounts (-v).
	Volumes []Mount
	// Secrets are the podman secrets mounted as files, each with the file
	// the unit's ExecStartPre creates it from.
	Secrets []Secret
	// Image is the container's image.
	Image string
	// StopTimeout is podman's --stop-timeout, "" when the unit sets none.
	StopTimeout string
	// Command is what the unit runs in place of the image's command
	// (Exec=), empty when it runs the image's own start.
	Command []string
}

// Mount is a bind mount.
type Mount struct {
	Host, Container string
	ReadOnly        bool
}

// Secret is a podman secret of type mount.
type Secret struct {
	Name, Source, Target string
	UID, GID             string
	Mode                 string
}

// ReadContainer converts a .container unit named name, with its drop-ins
// merged in order, as podman's quadlet generator does.
func ReadContainer(name string, unit []byte, dropins ...[]byte) (Container, error) {
	f := parser.NewUnitFile()
	if err := f.Parse(string(unit)); err != nil {
		return Container{}, fmt.Errorf("%s: %w", name, err)
	}
	f.Filename = name
	f.Path = path.Join("/usr/share/containers/systemd", name)
	for i, d := range dropins {
		df := parser.NewUnitFile()
		if err := df.Parse(string(d)); err != nil {
			return Container{}, fmt.Errorf("%s drop-in %d: %w", name, i, err)
		}
		f.Merge(df)
	}
	base := strings.TrimSuffix(name, ".container")
	info := map[string]*quadlet.UnitInfo{name: {ServiceName: base, ResourceName: base}}
	svc, warn, err := quadlet.ConvertContainer(f, info, false)
	if err != nil {
		return Container{}, fmt.Errorf("%s: quadlet: %w", name, err)
	}
	if warn != nil {
		return Container{}, fmt.Errorf("%s: quadlet warns: %w", name, warn)
	}
	args, ok, err := svc.LookupLastArgs(quadlet.ServiceGroup, "ExecStart")
	if !ok || err != nil {
		return Container{}, fmt.Errorf("%s: no ExecStart: %v", name, err)
	}
	sources := map[string]string{}
	for _, pre := range svc.LookupAll(quadlet.ServiceGroup, "ExecStartPre") {
		if w := strings.Fields(pre); len(w) == 6 && w[1] == "secret" && w[2] == "create" && w[3] == "--replace" {
			sources[w[4]] = w[5]
		}
	}
	run := slices.Index(args, "run")
	if run < 0 {
		return Container{}, fmt.Errorf("%s: ExecStart is not podman run: %q", name, args)
	}
	var c Container
	rest := args[run+1:]
	for i := 0; i < len(rest); i++ {
		flag, value, inline := strings.Cut(rest[i], "=")
		if !strings.HasPrefix(flag, "-") {
			c.Image = rest[i]
			c.Command = rest[i+1:]
			break
		}
		takes := map[string]bool{"--env": true, "-v": true, "--secret": true, "--stop-timeout": true,
			"--name": true, "--cidfile": true, "--cgroups": true, "--sdnotify": true, "--publish": true,
			"--pull": true, "--network": true, "--log-driver": true, "--label": true}
		if !inline && takes[flag] && i+1 < len(rest) {
			value = rest[i+1]
			i++
		}
		switch flag {
		case "--env":
			c.Env = append(c.Env, value)
		case "-v":
			parts := strings.Split(value, ":")
			if len(parts) < 2 {
				return Container{}, fmt.Errorf("%s: volume %q", name, value)
			}
			m := Mount{Host: parts[0], Container: parts[1]}
			m.ReadOnly = len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
			c.Volumes = append(c.Volumes, m)
		case "--secret":
			s := Secret{UID: "0", GID: "0", Mode: "0444"}
			fields := strings.Split(value, ",")
			s.Name = fields[0]
			for _, kv := range fields[1:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "target":
					s.Target = v
				case "uid":
					s.UID = v
				case "gid":
					s.GID = v
				case "mode":
					s.Mode = v
				}
			}
			if s.Source = sources[s.Name]; s.Source == "" {
				return Container{}, fmt.Errorf("%s: secret %s: no ExecStartPre creates it", name, s.Name)
			}
			c.Secrets = append(c.Secrets, s)
		case "--stop-timeout":
			c.StopTimeout = value
		}
	}
	return c, nil
}

// Getenv is the value of a variable of the container's environment.
func (c Container) Getenv(key string) (string, bool) {
	for _, kv := range c.Env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}
