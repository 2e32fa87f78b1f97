// Registry credentials: one login per registry, given once with
// with-registry-auth, used by every pull and push of the module.

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"

	"github.com/sourcegraph/conc/pool"
)

// WithRegistryAuth returns the module with a login for a registry.
//
// Every pull and push of the module then uses it: the base, bound and
// builder images, build-all's publishing and signing, disk --image's pull
// of a published node image, and running's look-ups of the nodes' tags. Repeat it for each registry; a second login
// for the same registry replaces the first. The nodes themselves get
// their own credentials with disks --pull-secret.
func (m *KafkaBootc) WithRegistryAuth(
	// Registry host, as in image references, for example quay.io or
	// registry.example.com:5000.
	address string,
	// User name, for example me+robot.
	username string,
	// Password or token, for example env:QUAY_TOKEN.
	secret *dagger.Secret,
) (*KafkaBootc, error) {
	if err := checkRegistryAddress(address); err != nil {
		return nil, err
	}
	if strings.TrimSpace(username) == "" {
		return nil, errors.New("registry username: must not be empty")
	}
	out := *m
	out.AuthAddresses, out.AuthUsernames, out.AuthSecrets = nil, nil, nil
	for i, a := range m.AuthAddresses {
		if a != address {
			out.AuthAddresses = append(out.AuthAddresses, a)
			out.AuthUsernames = append(out.AuthUsernames, m.AuthUsernames[i])
			out.AuthSecrets = append(out.AuthSecrets, m.AuthSecrets[i])
		}
	}
	out.AuthAddresses = append(out.AuthAddresses, address)
	out.AuthUsernames = append(out.AuthUsernames, username)
	out.AuthSecrets = append(out.AuthSecrets, secret)
	return &out, nil
}

// checkRegistryAddress checks a registry host as image references name it.
func checkRegistryAddress(address string) error {
	host, _, _ := strings.Cut(address, "/")
	if address == "" || host != address || strings.Contains(address, "://") || !strings.ContainsAny(address, ".:") && address != "localhost" {
		return fmt.Errorf("registry address %q: must be a registry host as image references name it, such as quay.io or registry.example.com:5000 (no scheme, no path)", address)
	}
	return nil
}

// withLogins gives a container the module's logins, for its pulls and
// its publishing. Dagger keeps a login for the whole session once a
// container that holds it is used; each pull and push names them all, so
// that none depends on which container the engine evaluates first.
func (m *KafkaBootc) withLogins(ctr *dagger.Container) *dagger.Container {
	for i, a := range m.AuthAddresses {
		ctr = ctr.WithRegistryAuth(a, m.AuthUsernames[i], m.AuthSecrets[i])
	}
	return ctr
}

// pull is an image pulled with the module's logins.
func (m *KafkaBootc) pull(ref string, opts ...dagger.ContainerFromOpts) *dagger.Container {
	return m.withLogins(dag.Container()).From(ref, opts...)
}

// logins are the module's logins with their secrets, for the tools that
// run in containers (podman in the builder, cosign), which read them from
// a containers-auth.json file.
func (m *KafkaBootc) logins(ctx context.Context) ([]nodes.Login, error) {
	var logins []nodes.Login
	for i, a := range m.AuthAddresses {
		secret, err := m.AuthSecrets[i].Plaintext(ctx)
		if err != nil {
			return nil, fmt.Errorf("registry login for %s: %w", a, err)
		}
		logins = append(logins, nodes.Login{Registry: a, Username: m.AuthUsernames[i], Password: secret})
	}
	return logins, nil
}

// withAuthFile mounts the module's logins in a container as a
// containers-auth.json secret at path, and nothing when there are none.
// alias, when set, is another name for the cluster registry's host, under
// which the container reaches it: its login is given under both names.
func (m *KafkaBootc) withAuthFile(ctx context.Context, ctr *dagger.Container, path, host, alias string) (*dagger.Container, error) {
	logins, err := m.logins(ctx)
	if err != nil || len(logins) == 0 {
		return ctr, err
	}
	for _, l := range logins {
		if alias != "" && l.Registry == host {
			logins = append(logins, nodes.Login{Registry: alias, Username: l.Username, Password: l.Password})
			break
		}
	}
	auth, err := nodes.AuthFile(logins)
	if err != nil {
		return nil, err
	}
	return ctr.WithMountedSecret(path, secretOf("kafka-bootc-registry-auth", auth)), nil
}

// pullVia pulls an image with the module's logins; one on the cluster
// registry's host comes from registry, when it is given, which stands in
// for that host (see build-all).
func (m *KafkaBootc) pullVia(c *nodes.Cluster, registry *dagger.Service, ref string) *dagger.Container {
	var opts dagger.ContainerFromOpts
	if registry != nil && c.OnRegistryHost(ref) {
		opts.RegistryService = registry
	}
	return m.pull(ref, opts)
}

// preflight resolves every image reference that a call will use, all at
// once and before anything is built: an image that does not exist, or that
// its registry will not serve without a login, fails the call in seconds,
// every one of them named with the registry's answer. registry, when set,
// stands in for the cluster registry's host (see build-all).
func (m *KafkaBootc) preflight(ctx context.Context, c *nodes.Cluster, registry *dagger.Service, refs ...string) error {
	failed := make([]nodes.Unresolved, len(refs))
	p := pool.New()
	for i, ref := range refs {
		p.Go(func() {
			if _, err := m.pullVia(c, registry, ref).ImageRef(ctx); err != nil {
				failed[i] = nodes.Unresolved{Ref: ref, Err: err}
			}
		})
	}
	p.Wait()
	var out []nodes.Unresolved
	for _, f := range failed {
		if f.Err != nil {
			out = append(out, f)
		}
	}
	return nodes.PreflightError(out)
}
