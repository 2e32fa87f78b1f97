// What a disk carries that no image may, and how it stays out of every
// output but the disk.

package main

import (
	"context"
	"fmt"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
)

// builderAuthFile is where the builder's podman finds the module's
// registry logins (REGISTRY_AUTH_FILE), to pull a published node image.
const builderAuthFile = "/run/kafka-bootc/auth.json"

// diskSecrets are what a disk carries that no image may: the login's
// password hash, the node's key and certificate, and the registry pull
// secret. They reach bib only inside its config, mounted as a secret.
type diskSecrets struct {
	passwordHash string
	issuer       *issuer
	pull         *pullSecret
}

// pullSecret is a checked pull secret and the credentials it holds.
type pullSecret struct {
	data   []byte
	values []string
}

// newPullSecret reads and checks a pull secret before anything is built;
// nil when none is given.
func newPullSecret(ctx context.Context, c *nodes.Cluster, secret *dagger.Secret) (*pullSecret, error) {
	if secret == nil {
		return nil, nil
	}
	text, err := secret.Plaintext(ctx)
	if err != nil {
		return nil, fmt.Errorf("pull secret: %w", err)
	}
	values, err := c.CheckPullSecret([]byte(text))
	if err != nil {
		return nil, err
	}
	return &pullSecret{data: []byte(text), values: append(values, text)}, nil
}

// scrubManifests removes the node's key and the pull secret from bib's
// manifests, which copy the config's files: they leave the builder only
// inside the disk.
func scrubManifests(ctx context.Context, out *dagger.Directory, secrets ...bib.Secret) (*dagger.Directory, error) {
	manifests, err := out.Glob(ctx, "manifest-*.json")
	if err != nil {
		return nil, err
	}
	for _, name := range manifests {
		text, err := out.File(name).Contents(ctx)
		if err != nil {
			return nil, err
		}
		scrubbed, _, err := bib.Scrub([]byte(text), secrets...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = out.WithNewFile(name, string(scrubbed))
	}
	return out, nil
}
