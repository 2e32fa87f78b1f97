package nodes

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
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
