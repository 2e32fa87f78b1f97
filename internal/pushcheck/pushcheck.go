// Package pushcheck asks registries, before anything is built, whether
// build-all's credentials may push where the cluster publishes: a refusal
// then fails build-all in seconds, not after every image is built.
package pushcheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"dagger/kafka-bootc/nodes"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sourcegraph/conc/pool"
)

// keychain gives the login of a registry, anonymous where there is none.
// A login's address is compared as go-containerregistry names registries
// (docker.io is index.docker.io).
type keychain []nodes.Login

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	for _, l := range k {
		reg, err := name.NewRegistry(l.Registry)
		if err == nil && reg.RegistryStr() == r.RegistryStr() {
			return authn.FromConfig(authn.AuthConfig{Username: l.Username, Password: l.Password}), nil
		}
	}
	return authn.Anonymous, nil
}

// Check asks the registry of each repository whether a push is allowed
// with the logins, as a push starts: the token exchange with push scope,
// then the start of a blob upload, which it cancels (go-containerregistry's
// CheckPushPermission). Every repository is asked at once. A registry on
// localhost or a private address is spoken to over plain HTTP, as
// go-containerregistry does.
//
// Only a refusal is an error: the registry answered that these logins may
// not push (401, 403, or the error codes DENIED and UNAUTHORIZED); every
// refusal is returned, each naming the repository and the registry's
// answer. A registry that cannot be asked from here (no route, no answer,
// another answer) is not a refusal: the pushes are made by the Dagger
// engine, which may reach registries that the module's own container does
// not (a localhost registry of the engine's, a mirror in its
// configuration). Each such registry gets one line in unasked, and the
// publish goes on.
func Check(ctx context.Context, repos []string, logins []nodes.Login, t http.RoundTripper) (unasked []string, err error) {
	if t == nil {
		t = http.DefaultTransport
	}
	errs := make([]error, len(repos))
	notes := make([]error, len(repos))
	registries := make([]string, len(repos))
	p := pool.New().WithContext(ctx)
	for i, repo := range repos {
		p.Go(func(ctx context.Context) error {
			r, err := name.NewRepository(repo)
			if err != nil {
				errs[i] = fmt.Errorf("pushing to %s: %w", repo, err)
				return nil
			}
			registries[i] = r.RegistryStr()
			err = remote.CheckPushPermission(r.Tag("kafka-bootc-push-check"), keychain(logins), t)
			switch {
			case err == nil:
			case refused(err):
				errs[i] = fmt.Errorf("pushing to %s: the registry refuses: %w", repo, err)
			default:
				notes[i] = err
			}
			return nil
		})
	}
	p.Wait()
	said := map[string]bool{}
	for i, n := range notes {
		if n == nil || said[registries[i]] {
			continue
		}
		said[registries[i]] = true
		unasked = append(unasked, fmt.Sprintf("registry %s: push permission not checked before the build: it cannot be asked from the module's container (%s); the publish, made by the Dagger engine, goes on", registries[i], oneLine(n)))
	}
	return unasked, errors.Join(errs...)
}

// refused reports whether the registry answered that the push is not
// allowed.
func refused(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
			return true
		}
	}
	return false
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
