package nodes

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

// Login is a registry login: its password or token is a secret.
type Login struct {
	Registry, Username, Password string
}

// AuthFile writes logins as a containers-auth.json(5) file, which podman,
// skopeo and cosign (as a Docker config.json) read.
func AuthFile(logins []Login) ([]byte, error) {
	auths := map[string]map[string]string{}
	for _, l := range logins {
		auths[l.Registry] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(l.Username + ":" + l.Password))}
	}
	return json.Marshal(map[string]any{"auths": auths})
}

// RegistryHost is the registry of an image reference, as logins name it:
// docker.io for a Docker Hub name.
func RegistryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		host, _, _ := strings.Cut(ref, "/")
		return host
	}
	return reference.Domain(named)
}

// denied matches what registries and the tools that talk to them answer
// when a login is missing or not enough: HTTP 401 and 403, and the
// distribution spec's UNAUTHORIZED and DENIED error codes.
var denied = regexp.MustCompile(`(?i)\b(401|403)\b|unauthorized|authentication required|access denied|access to the resource is denied|denied: |forbidden`)

// RegistryError says in words what a registry's refusal means: the
// registry of ref needs credentials, or better ones. Any other error is
// returned as it is.
func RegistryError(what, ref string, err error) error {
	if err == nil {
		return nil
	}
	if Denied(err) {
		host := RegistryHost(ref)
		return fmt.Errorf("%s %s: the registry %s refused access: it needs credentials (with-registry-auth --address %s --username USER --secret env:TOKEN), or the ones given lack access to it (%s)",
			what, ref, host, host, firstLine(err))
	}
	return fmt.Errorf("%s %s: %w", what, ref, err)
}

// Denied reports whether an error is a registry's refusal of access.
func Denied(err error) bool {
	return err != nil && denied.MatchString(err.Error())
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	return line
}

// Unresolved is an image reference that could not be resolved, and the
// registry's answer.
type Unresolved struct {
	Ref string
	Err error
}

// PreflightError lists at once every image that could not be resolved
// before anything was built, each with the registry's answer in words; nil
// when there is none.
func PreflightError(failed []Unresolved) error {
	if len(failed) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pre-flight: %d image(s) cannot be resolved, so nothing was built:", len(failed))
	for _, f := range failed {
		b.WriteString("\n  " + f.Ref + ": ")
		if Denied(f.Err) {
			host := RegistryHost(f.Ref)
			fmt.Fprintf(&b, "the registry %s refused access: it needs credentials (with-registry-auth --address %s ...), or the ones given lack access to it", host, host)
			continue
		}
		b.WriteString(firstLine(f.Err))
	}
	return errors.New(b.String())
}

// UpstreamImages lists the image references that building the cluster uses: the
// bootc base image and the bound images, each once.
func (c *Cluster) UpstreamImages() []string {
	var out []string
	for _, ref := range []string{c.BaseImage, c.KafkaImage, c.ExporterImage} {
		if !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out
}
