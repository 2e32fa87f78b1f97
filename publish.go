// Publishing: build-all builds every node image and pushes it, in waves.

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/internal/pushcheck"
	"dagger/kafka-bootc/nodes"

	"github.com/sourcegraph/conc/pool"
)

// BuildAll builds every node image and publishes each, pinned by digest.
//
// It builds every node image concurrently and publishes each to
// <registry>/<node>:<tag>: first one node, then the first of the other
// role, then all the others at once, so that the registry receives each
// shared layer once and later pushes mount it. It returns one line per
// node with the published reference pinned by digest: what nodes will
// run, whatever the tag later points to (with --format json, a list of
// {node, image, digest, signed, sbom}). Without a registry it builds and
// checks every image and says that nothing was published. Every failing
// node is reported, not only the first. With --signing-key it signs each
// published digest with cosign and attaches an SBOM (SPDX, from syft) as a
// signed attestation, and says so on the node's line.
//
// Never cached: it writes to a registry, which may have lost an image
// since the last run, and it starts from tags that move. Reruns stay cheap
// all the same: unchanged layers come from Dagger's layer cache, and the
// registry is only asked whether it has them.
// +cache="never"
func (m *KafkaBootc) BuildAll(
	ctx context.Context,
	// A registry running as a Dagger service that stands in for the
	// registry's host: node images are published to it, and a base image
	// on that host is pulled from it (used by tests). Give the cluster's
	// registry as localhost:PORT/NAMESPACE: the service takes over the
	// host name only, and Dagger speaks plain HTTP to localhost alone.
	// +optional
	registryService *dagger.Service,
	// cosign private key that signs every published digest, for example
	// env:COSIGN_KEY (cosign.key, as cosign generate-key-pair writes it). The
	// signatures go next to the images, where podman, skopeo and bootc look
	// for them.
	// +optional
	signingKey *dagger.Secret,
	// Password of --signing-key, for example env:COSIGN_PASSWORD; leave it
	// out for a key without one.
	// +optional
	signingPassword *dagger.Secret,
	// During a key rotation: the public key that the running nodes trust
	// now (old.pub), while --signing-public-key is the new one that the
	// images carry. --signing-key must then be the old private key, so that
	// the nodes take the images that bring them the new key.
	// +optional
	trustedPublicKey *dagger.File,
	// How the result is written: text (a line per node, the default) or
	// json (a list of {node, image, digest, signed, sbom}, for jq and
	// scripts).
	// +optional
	format string,
	// cosign's image, for a mirror: pinned by digest, with cosign at
	// /ko-app/cosign as in sigstore's image (the default,
	// ghcr.io/sigstore/cosign/cosign:v2.6.3).
	// +optional
	cosignImage string,
	// syft's image, for a mirror: pinned by digest, with syft at /syft as
	// in anchore's image (the default, docker.io/anchore/syft:v1.50.0).
	// +optional
	syftImage string,
	// Build cosign and syft from their Go modules instead of pulling their
	// images: minutes on a cold engine, for sites that build their tools.
	// +optional
	toolsFromSource bool,
) (string, error) {
	c, err := m.cluster()
	if err != nil {
		return "", err
	}
	if err := nodes.CheckFormat(format); err != nil {
		return "", err
	}
	if err := checkSigningArgs(c, signingKey != nil, signingPassword != nil, trustedPublicKey != nil); err != nil {
		return "", err
	}
	cosignImage, syftImage, err = signingToolImages(signingKey != nil, toolsFromSource, cosignImage, syftImage)
	if err != nil {
		return "", err
	}
	// Every image a build starts from, and the signing tools' images,
	// before anything is built.
	upstream := c.UpstreamImages()
	if signingKey != nil && !toolsFromSource {
		upstream = append(upstream, cosignImage, syftImage)
	}
	if err := errors.Join(m.preflight(ctx, c, registryService, upstream...), m.checkPush(ctx, c, registryService)); err != nil {
		return "", err
	}
	var sign *signer
	if signingKey != nil {
		// The nodes take only images signed with the key they trust: the
		// images' own key, or during a rotation the one before it.
		trusted := c.SigningPublicKey
		if trustedPublicKey != nil {
			if trusted, err = trustedPublicKey.Contents(ctx); err != nil {
				return "", fmt.Errorf("trusted public key: %w", err)
			}
			if err := nodes.CheckSigningPublicKey(trusted); err != nil {
				return "", fmt.Errorf("trusted %w", err)
			}
		}
		// Checked before anything is built or published.
		if sign, err = m.newSigner(ctx, c, m.tools(c, registryService, toolsFromSource, cosignImage, syftImage), trusted, signingKey, signingPassword, registryService); err != nil {
			return "", err
		}
	}
	// Every node is built at once; the publishes follow in waves, so that
	// the registry receives each layer once (see nodes.PublishWaves).
	// Results go by index: pools finish in any order.
	ctrs := make([]*dagger.Container, len(c.Nodes))
	errs := make([]error, len(c.Nodes))
	results := make([]nodes.Published, len(c.Nodes))
	index := map[string]int{}
	built := pool.New()
	for i, n := range c.Nodes {
		index[n.Name] = i
		built.Go(func() {
			ctrs[i], errs[i] = m.node(c, n, registryService)
			if errs[i] == nil {
				ctrs[i], errs[i] = ctrs[i].Sync(ctx)
				results[i] = nodes.Published{Node: n.Name}
			}
			if nodes.Denied(errs[i]) && strings.Contains(errs[i].Error(), c.BaseImage) {
				// The base image is the one image a build pulls.
				errs[i] = nodes.RegistryError("pulling", c.BaseImage, errs[i])
			}
		})
	}
	built.Wait()
	if c.Registry != "" {
		for _, wave := range c.PublishWaves() {
			published := pool.New()
			for _, n := range wave {
				i := index[n.Name]
				if errs[i] != nil {
					continue
				}
				published.Go(func() {
					ref, err := m.withLogins(ctrs[i]).Publish(ctx, c.Ref(n), dagger.ContainerPublishOpts{RegistryService: registryService})
					if err != nil {
						errs[i] = nodes.RegistryError("publish", c.Ref(n), err)
						return
					}
					results[i] = nodes.PublishedAt(n.Name, ref)
					if sign != nil {
						if errs[i] = sign.signAndAttest(ctx, ref, ctrs[i]); errs[i] == nil {
							results[i].Signed, results[i].SBOM = true, true
						}
					}
				})
			}
			published.Wait()
		}
	}
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", c.Nodes[i].Name, err))
		}
	}
	if err := errors.Join(failed...); err != nil {
		return "", err
	}
	return nodes.FormatPublished(format, results)
}

// checkPush asks the cluster's registry whether the module's logins may
// push to every node's repository, before anything is built: a refusal
// fails build-all in seconds. A registry that runs as a Dagger service is
// reached through Dagger alone, so it is not asked, and one that cannot be
// asked from the module's container is said so on stderr, a line per
// repository: the publish itself finds a refusal there.
func (m *KafkaBootc) checkPush(ctx context.Context, c *nodes.Cluster, registryService *dagger.Service) error {
	if c.Registry == "" || registryService != nil {
		return nil
	}
	logins, err := m.logins(ctx)
	if err != nil {
		return err
	}
	repos := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		repos[i] = c.Registry + "/" + n.Name
	}
	unasked, err := pushcheck.Check(ctx, repos, logins, nil)
	for _, line := range unasked {
		fmt.Fprintln(os.Stderr, line)
	}
	return err
}

// signingToolImages checks the signing tools' images that build-all was
// given, and fills in the defaults: an image is for signing only, and not
// with --tools-from-source.
func signingToolImages(signing, fromSource bool, cosign, syft string) (string, string, error) {
	given := cosign != "" || syft != ""
	switch {
	case !signing && (given || fromSource):
		return "", "", errors.New("cosign image, syft image, tools from source: they choose the signing tools; give them with --signing-key")
	case fromSource && given:
		return "", "", errors.New("tools from source: builds cosign and syft from their Go modules; leave --cosign-image and --syft-image out with it")
	}
	if cosign == "" {
		cosign = nodes.DefaultCosignImage
	}
	if syft == "" {
		syft = nodes.DefaultSyftImage
	}
	if err := nodes.CheckToolImage("cosign image", cosign); err != nil {
		return "", "", err
	}
	if err := nodes.CheckToolImage("syft image", syft); err != nil {
		return "", "", err
	}
	return cosign, syft, nil
}

// checkSigningArgs checks build-all's signing arguments against each other
// and the cluster, before anything is built.
func checkSigningArgs(c *nodes.Cluster, key, password, trustedPublicKey bool) error {
	switch {
	case !key && password:
		return errors.New("signing password: given without --signing-key")
	case key && c.Registry == "":
		return errors.New("signing key: given for a cluster without a registry: only published images are signed")
	case trustedPublicKey && (!key || c.SigningPublicKey == ""):
		return errors.New("trusted public key: it names the key the nodes trust during a rotation; give it with --signing-key and --signing-public-key")
	}
	return nil
}
