// Package pushcheck asks registries, before anything is built, whether
// build-all's credentials may push where the cluster publishes: a refusal
// then fails build-all in seconds, not after every image is built.
package pushcheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"dagger/kafka-bootc/nodes"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
// CheckPushPermission). Every repository is asked at once, and every
// refusal is returned, each naming the repository and the registry's
// answer. A registry on localhost or a private address is spoken to over
// plain HTTP, as go-containerregistry does.
func Check(ctx context.Context, repos []string, logins []nodes.Login, t http.RoundTripper) error {
	if t == nil {
		t = http.DefaultTransport
	}
	errs := make([]error, len(repos))
	p := pool.New().WithContext(ctx)
	for i, repo := range repos {
		p.Go(func(ctx context.Context) error {
			r, err := name.NewRepository(repo)
			if err != nil {
				errs[i] = fmt.Errorf("pushing to %s: %w", repo, err)
				return nil
			}
			if err := remote.CheckPushPermission(r.Tag("kafka-bootc-push-check"), keychain(logins), t); err != nil {
				errs[i] = fmt.Errorf("pushing to %s: the registry refuses: %w", repo, err)
			}
			return nil
		})
	}
	p.Wait()
	return errors.Join(errs...)
}
