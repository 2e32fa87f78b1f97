// Disks: bootc-image-builder runs per node, on a seed shared by all.

package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"

	"github.com/sourcegraph/conc/pool"
)

// Disks returns a disk image for every node, built with bootc-image-builder.
//
// It builds a disk for every node with bootc-image-builder, a few at a
// time, and returns them as <node>/qcow2/disk.qcow2 (and the other types'
// paths) with bib's manifests, plus start-vms.sh and remove-vms.sh to run
// the cluster with virt-install. Each disk installs its node image with the
// registry reference as upgrade source.
//
// Kept for one session only: the disks start from the base, bound and
// builder images' tags, which move. A rerun with nothing changed reuses
// the disks from Dagger's layer cache, in tls mode too on the same day:
// each node's key and certificate derive from the CA key, its names, the
// validity and the day, unless --rotate asks for new ones.
// +cache="session"
func (m *KafkaBootc) Disks(
	ctx context.Context,
	// Password hash for the disk user (a crypt(3) hash, as openssl passwd
	// -6 prints), for example env:KAFKA_PASSWORD_HASH. SSH keys are
	// preferred.
	// +optional
	password *dagger.Secret,
	// How many disks to build at once; each takes gigabytes of disk space.
	// +default=2
	parallel int,
	// The cluster CA's certificate, ca.crt as the ca function writes it:
	// each disk gets a key and a certificate of its own, signed by it.
	// During a CA rotation, the bundle of old and new CA, which the disks
	// then trust. Required in tls mode.
	// +optional
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key. It signs
	// the node certificates, and goes nowhere else.
	// +optional
	caKey *dagger.Secret,
	// Validity of each node certificate, in days.
	// +default=365
	certDays int,
	// An extra name for a node's certificate, as NODE=NAME, where NAME is a
	// DNS name or an IP address (repeatable), for example
	// kafka-broker-1=10.0.0.11.
	// +optional
	extraName []string,
	// Registry credentials for the nodes, in containers-auth.json format as
	// podman login --authfile writes it, for example file:./auth.json (a
	// read-only robot account). Each disk gets it as /etc/ostree/auth.json,
	// root only, where bootc reads it to pull the node's upgrades and its
	// bound images: needed when the registry's repositories are private.
	// +optional
	pullSecret *dagger.Secret,
	// Give every disk a new key. By default each node's key and
	// certificate are derived from the CA key, the node's names, the
	// validity and today's date, so that a rerun the same day with nothing
	// changed builds no disk again.
	// +optional
	rotate bool,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	if err := checkDisksArgs(c, parallel); err != nil {
		return nil, err
	}
	secrets, err := m.prepareDisks(ctx, c, password, caCert, caKey, certDays, extraName, pullSecret, rotate)
	if err != nil {
		return nil, err
	}
	dirs := make([]*dagger.Directory, len(c.Nodes))
	h := m.newHandoff()
	p := pool.New().WithContext(ctx).WithMaxGoroutines(parallel)
	for i, n := range c.Nodes {
		p.Go(func(ctx context.Context) error {
			dir, err := m.disk(ctx, c, n, "", secrets, h)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			// Build it here, so that no more than parallel run at once.
			dirs[i], err = dir.Sync(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	out := dag.Directory()
	for i, n := range c.Nodes {
		out = out.WithDirectory(n.Name, dirs[i])
	}
	return withVMScripts(out, c, c.Nodes)
}

// Disk returns one node's disk image, built with bootc-image-builder.
//
// It builds one node's disk with bootc-image-builder and returns it laid
// out as <node>/qcow2/disk.qcow2 (and the other types' paths), plus
// scripts to start and remove the VM.
//
// Kept for one session only, as disks: the base, bound and builder images'
// tags move.
// +cache="session"
func (m *KafkaBootc) Disk(
	ctx context.Context,
	// Node name, for example kafka-broker-1.
	node string,
	// The published node image to install, pinned by digest, as build-all
	// printed it. When given, the disk holds exactly that image instead of a
	// rebuild.
	// +optional
	image string,
	// Password hash for the disk user (a crypt(3) hash), for example
	// env:KAFKA_PASSWORD_HASH.
	// +optional
	password *dagger.Secret,
	// The cluster CA's certificate (ca.crt), or during a CA rotation the
	// bundle of old and new CA: the disk gets a key and certificate
	// signed by it. Required in tls mode. (A running node's certificate is
	// renewed in place with running ... renew-certificates.)
	// +optional
	caCert *dagger.File,
	// The cluster CA's private key, for example file:./ca/ca.key.
	// +optional
	caKey *dagger.Secret,
	// Validity of the node certificate, in days.
	// +default=365
	certDays int,
	// An extra name for the node's certificate, as NODE=NAME, where NAME is
	// a DNS name or an IP address (repeatable).
	// +optional
	extraName []string,
	// Registry credentials for the node, in containers-auth.json format,
	// for example file:./auth.json: the disk gets it as
	// /etc/ostree/auth.json, root only, where bootc reads it.
	// +optional
	pullSecret *dagger.Secret,
	// Give the disk a new key instead of the one derived from the CA key,
	// the node's names, the validity and today's date.
	// +optional
	rotate bool,
) (*dagger.Directory, error) {
	c, err := m.cluster()
	if err != nil {
		return nil, err
	}
	n, err := c.Node(node)
	if err != nil {
		return nil, err
	}
	secrets, err := m.prepareDisks(ctx, c, password, caCert, caKey, certDays, extraName, pullSecret, rotate)
	if err != nil {
		return nil, err
	}
	dir, err := m.disk(ctx, c, n, image, secrets, m.newHandoff())
	if err != nil {
		return nil, err
	}
	if image != "" {
		// Built here, so that a registry that refuses the pull says so in
		// words.
		if dir, err = dir.Sync(ctx); nodes.Denied(err) {
			return nil, nodes.RegistryError("pulling", image, err)
		} else if err != nil {
			return nil, err
		}
	}
	return withVMScripts(dag.Directory().WithDirectory(n.Name, dir), c, []nodes.Node{n})
}

// disk runs bootc-image-builder for a node: the node image (built, or the
// published one) and both bound images go into bib's storage under the
// references that bib and bootc look for. The bound images and the bootc
// base image come from the seed, loaded once for every node. In tls mode
// the issuer makes the node's key and certificate, which reach bib inside
// its config, a secret, and leave only inside the disk; so does the pull
// secret.
func (m *KafkaBootc) disk(ctx context.Context, c *nodes.Cluster, n nodes.Node, published string, secrets diskSecrets, h *handoff) (*dagger.Directory, error) {
	spec := c.Disk
	spec.PasswordHash = secrets.passwordHash
	if err := spec.CheckLogin(); err != nil {
		return nil, err
	}
	run, archives, err := m.diskRun(ctx, c, n, published, h)
	if err != nil {
		return nil, err
	}
	config, scrub, err := diskConfig(spec, n, secrets.issuer, secrets.pull)
	if err != nil {
		return nil, err
	}
	cfg, err := config.TOML()
	if err != nil {
		return nil, err
	}
	builder := m.builder("kafka-bootc-bib-storage-"+n.Name).
		WithMountedCache(bib.StoreDir, dag.CacheVolume("kafka-bootc-bib-store")).
		WithMountedCache(bib.RPMMDDir, dag.CacheVolume("kafka-bootc-bib-rpmmd")).
		WithDirectory(bib.OutputDir, dag.Directory())
	if len(scrub) > 0 {
		// The node's key and the pull secret must stay out of every log
		// and layer, and a password hash is nobody's business either.
		builder = builder.WithMountedSecret(bib.ConfigPath, secretOf("kafka-bootc-bib-config-"+n.Name, cfg))
	} else {
		builder = builder.WithNewFile(bib.ConfigPath, string(cfg))
	}
	if published != "" && len(m.AuthAddresses) > 0 {
		// The builder's podman pulls the published node image itself.
		if builder, err = m.withAuthFile(ctx, builder, builderAuthFile, "", ""); err != nil {
			return nil, err
		}
		builder = builder.WithEnvVariable("REGISTRY_AUTH_FILE", builderAuthFile)
	}
	builder = h.bind(builder, run.Images...).WithMountedDirectory(bib.SeedDir, m.seed(run.Seed, archives, h))
	out := runScript(builder, run.Script()).Directory(bib.OutputDir)
	if len(scrub) == 0 {
		return out, nil
	}
	return scrubManifests(ctx, out, scrub...)
}

// diskConfig is bib's config for a node, and the secrets that it holds:
// the login's password hash, the node's key (from the issuer, in tls mode)
// and the pull secret. Each must leave the builder only inside the disk:
// the config is then mounted as a secret, and the secrets are scrubbed
// from bib's manifests, which copy the config's values.
func diskConfig(spec bib.Spec, n nodes.Node, is *issuer, ps *pullSecret) (bib.Config, []bib.Secret, error) {
	config := spec.Config()
	var scrub []bib.Secret
	if spec.PasswordHash != "" {
		// osbuild writes the hash into the manifest's users stage.
		scrub = append(scrub, bib.NewValuesSecret(spec.PasswordHash))
	}
	add := func(dirs []bib.Directory, files []bib.File) {
		config.Customizations.Directories = append(config.Customizations.Directories, dirs...)
		config.Customizations.Files = append(config.Customizations.Files, files...)
	}
	if is != nil {
		nodePEM, keyPEM, err := is.node(n)
		if err != nil {
			return bib.Config{}, nil, fmt.Errorf("node certificate: %w", err)
		}
		scrub = append(scrub, bib.NewSecret(keyPEM))
		add(nodes.NodeTLSFiles(nodePEM, is.ca.TrustPEM))
	}
	if ps != nil {
		scrub = append(scrub, bib.NewValuesSecret(ps.values...))
		add(nodes.PullSecretFiles(ps.data))
	}
	return config, scrub, nil
}

// diskRun decides what goes into bib's storage for a node: the node's own
// image, on a seed that holds the bootc base image and the bound images,
// which every node shares. A node image built here reaches the builder
// through the handoff registry, after the base. It returns the bound
// images' containers to load as archives, by archive path.
func (m *KafkaBootc) diskRun(ctx context.Context, c *nodes.Cluster, n nodes.Node, published string, h *handoff) (bib.Run, map[string]*dagger.Container, error) {
	stored, err := c.DiskImages(n, published)
	if err != nil {
		return bib.Run{}, nil, err
	}
	outputs, err := c.Disk.Outputs()
	if err != nil {
		return bib.Run{}, nil, err
	}
	run := bib.Run{Target: c.Ref(n), Outputs: outputs, Seed: &bib.Seed{}}
	archives := map[string]*dagger.Container{}
	for i, img := range stored {
		bi := bib.Image{Ref: img.Ref, Pull: img.Pull}
		switch {
		case img.Node && img.Pull == "":
			// The base first: pushes that start together cannot mount
			// from each other, and each would upload its gigabytes.
			base, err := h.put(ctx, "base", m.pull(c.BaseImage))
			if err != nil {
				return bib.Run{}, nil, err
			}
			run.Seed.Base = &bib.Image{Pull: base, PlainHTTP: true}
			ctr, err := m.node(c, n, nil)
			if err != nil {
				return bib.Run{}, nil, err
			}
			if bi.Pull, err = h.put(ctx, n.Name, ctr); err != nil {
				return bib.Run{}, nil, err
			}
			bi.PlainHTTP = true
		case img.Pull == "":
			bi.Archive = path.Join(bib.ImagesDir, fmt.Sprintf("%d.tar", i))
			archives[bi.Archive] = m.pull(img.Ref)
		}
		if img.Node {
			run.Images = append(run.Images, bi)
		} else {
			run.Seed.Images = append(run.Seed.Images, bi)
		}
	}
	return run, archives, nil
}

// seed runs a seed's script in the builder and returns SeedDir: the
// archive of a storage that holds the images every node shares. It
// depends only on the bootc base image, the bound images and the builder,
// so Dagger makes it once for every node of every role, and keeps it when
// only the cluster's settings change.
func (m *KafkaBootc) seed(seed *bib.Seed, archives map[string]*dagger.Container, h *handoff) *dagger.Directory {
	ctr := m.builder("kafka-bootc-bib-seed").WithDirectory(bib.SeedDir, dag.Directory())
	// In the images' order: a map's would vary, and with it Dagger's key.
	for _, img := range seed.Images {
		if img.Archive != "" {
			ctr = ctr.WithMountedFile(img.Archive, archives[img.Archive].AsTarball())
		}
	}
	if seed.Base != nil {
		ctr = h.bind(ctr, *seed.Base)
	}
	return runScript(ctr, seed.Script()).Directory(bib.SeedDir)
}

// builder is the bootc-image-builder image with the named cache volume as
// its container storage, which one run at a time uses.
func (m *KafkaBootc) builder(storage string) *dagger.Container {
	return m.pull(m.Builder).
		WithMountedCache(bib.Storage, dag.CacheVolume(storage),
			dagger.ContainerWithMountedCacheOpts{Sharing: dagger.CacheSharingModeLocked})
}

// runScript runs a builder script as root with the privileges that podman
// and bib need.
func runScript(builder *dagger.Container, script string) *dagger.Container {
	return builder.WithExec([]string{"sh", "-c", script},
		dagger.ContainerWithExecOpts{InsecureRootCapabilities: true})
}

// withVMScripts adds the scripts that start and remove the nodes' VMs.
func withVMScripts(dir *dagger.Directory, c *nodes.Cluster, ns []nodes.Node) (*dagger.Directory, error) {
	outputs, err := c.Disk.Outputs()
	if err != nil {
		return nil, err
	}
	for _, s := range bib.VMScripts(c.VMs(ns), outputs) {
		dir = dir.WithNewFile(s.Name, string(s.Content), dagger.DirectoryWithNewFileOpts{Permissions: 0o755})
	}
	return dir, nil
}

// diskImages are the images every disk build starts from: the base and
// bound images, the builder, and the handoff registry.
func (m *KafkaBootc) diskImages(c *nodes.Cluster) []string {
	return append(c.UpstreamImages(), m.Builder, handoffImage)
}

// prepareDisks checks every argument that disks and disk share, and
// every image they start from, before anything is built, and returns
// what the disks will carry.
func (m *KafkaBootc) prepareDisks(ctx context.Context, c *nodes.Cluster, password *dagger.Secret, caCert *dagger.File, caKey *dagger.Secret,
	certDays int, extraName []string, pullSecret *dagger.Secret, rotate bool) (diskSecrets, error) {
	issuer, err := newIssuer(ctx, c, caCert, caKey, certDays, extraName, rotate)
	if err != nil {
		return diskSecrets{}, err
	}
	pull, err := newPullSecret(ctx, c, pullSecret)
	if err != nil {
		return diskSecrets{}, err
	}
	hash, err := passwordHash(ctx, c.Disk, password)
	if err != nil {
		return diskSecrets{}, err
	}
	if err := m.preflight(ctx, c, nil, m.diskImages(c)...); err != nil {
		return diskSecrets{}, err
	}
	return diskSecrets{passwordHash: hash, issuer: issuer, pull: pull}, nil
}

// passwordHash reads and checks the disk user's password hash, before
// anything is built; empty when none is given.
func passwordHash(ctx context.Context, spec bib.Spec, password *dagger.Secret) (string, error) {
	if password == nil {
		return "", nil
	}
	text, err := password.Plaintext(ctx)
	if err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return checkPasswordHash(spec, text)
}

// checkPasswordHash checks the text of --password against the disk spec.
func checkPasswordHash(spec bib.Spec, text string) (string, error) {
	spec.PasswordHash = strings.TrimSpace(text)
	if spec.PasswordHash == "" {
		return "", errors.New("password: the secret is empty: give a crypt(3) hash such as `openssl passwd -6` prints, or leave out --password")
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	return spec.PasswordHash, nil
}

// checkDisksArgs checks what disks needs beyond the CA: a registry, which
// each disk installs its node image from, and a positive parallelism.
func checkDisksArgs(c *nodes.Cluster, parallel int) error {
	if parallel < 1 {
		return fmt.Errorf("parallel %d: must be at least 1", parallel)
	}
	if c.Registry == "" {
		return nodes.ErrNoRegistry
	}
	return nil
}
