// The check of signatures and SBOMs.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"dagger/tests/internal/dagger"
)

// cosign is the cosign that kafka-bootc signs with, built from its module.
func cosign() *dagger.Container {
	return goTool("github.com/sigstore/cosign/v2/cmd/cosign@v2.6.3")
}

// goTool is a Go program built from its module, as kafka-bootc's
// --tools-from-source builds it.
func goTool(module string) *dagger.Container {
	return dag.Container().From("docker.io/library/golang:1.26").
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("kafka-bootc-go-mod")).
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("kafka-bootc-go-build")).
		WithEnvVariable("GOBIN", "/usr/local/bin").
		WithExec([]string{"go", "install", module}).
		WithoutMount("/go/pkg/mod").
		WithoutMount("/root/.cache/go-build")
}

// toolImages publishes stand-ins for sigstore's cosign image and anchore's
// syft image to the registry, which the local engine cannot pull from
// ghcr.io and docker.io: containers with the tools at the same paths
// (/ko-app/cosign, /syft), pinned by the digests they are published
// under.
func toolImages(ctx context.Context, reg registry) (cosignRef, syftRef string, err error) {
	base := dag.Container().From("docker.io/library/golang:1.26")
	cosignImage := base.WithFile("/ko-app/cosign", cosign().File("/usr/local/bin/cosign"))
	syftImage := base.WithFile("/syft", goTool("github.com/anchore/syft/cmd/syft@v1.57.1").File("/usr/local/bin/syft"))
	tag := nonce()
	if cosignRef, err = cosignImage.Publish(ctx, registryHost+"/e2e/cosign-standin:"+tag, dagger.ContainerPublishOpts{RegistryService: reg.svc}); err != nil {
		return "", "", fmt.Errorf("publishing the cosign stand-in: %w", err)
	}
	if syftRef, err = syftImage.Publish(ctx, registryHost+"/e2e/syft-standin:"+tag, dagger.ContainerPublishOpts{RegistryService: reg.svc}); err != nil {
		return "", "", fmt.Errorf("publishing the syft stand-in: %w", err)
	}
	return cosignRef, syftRef, nil
}

// Signing runs build-all with a cosign key and checks with cosign verify
// that every published digest is signed by it, and by no other key; a
// rerun with nothing changed signs nothing again: the registry receives
// one signature manifest per node in all.
// +cache="never"
func (m *Tests) Signing(ctx context.Context) error {
	reg := newRegistry("kafka-bootc-e2e-signing-" + nonce())
	const password = "e2e signing password"
	keys := func(name string) *dagger.Directory {
		return cosign().WithSecretVariable("COSIGN_PASSWORD", dag.SetSecret("e2e-cosign-password", password)).WithWorkdir("/keys").
			WithEnvVariable("KEY", name).
			WithExec([]string{"cosign", "generate-key-pair"}).Directory("/keys")
	}
	mine, other := keys("e2e "+nonce()), keys("other "+nonce())
	key, err := mine.File("cosign.key").Contents(ctx)
	if err != nil {
		return fmt.Errorf("cosign generate-key-pair: %w", err)
	}
	// The tools come from their images, as by default, here the
	// stand-ins'.
	cosignRef, syftRef, err := toolImages(ctx, reg)
	if err != nil {
		return err
	}
	buildAll := func(step string) (map[string]string, error) {
		out, err := cluster("signing", clusterOpts{}).BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{
			RegistryService: reg.svc,
			SigningKey:      dag.SetSecret("e2e-cosign-key-"+nonce(), key),
			SigningPassword: dag.SetSecret("e2e-cosign-password", password),
			CosignImage:     cosignRef,
			SyftImage:       syftRef,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: build-all: %w", step, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasSuffix(line, " signed, SBOM attached") {
				return nil, fmt.Errorf("%s: build-all printed %q, which does not say that it was signed", step, line)
			}
		}
		return publishedRefs(out)
	}
	if err := keyChecks(ctx, mine, other, key, password); err != nil {
		return err
	}
	refs, err := buildAll("first run")
	if err != nil {
		return err
	}
	verify := func(keys *dagger.Directory, ref string) (int, error) {
		target := registryTarget(ref)
		return cosign().WithServiceBinding("kafka-bootc-registry", reg.svc).
			WithMountedDirectory("/keys", keys).
			WithEnvVariable("RUN", nonce()).
			WithExec([]string{"cosign", "verify", "--key", "/keys/cosign.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--allow-insecure-registry", target},
				dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny}).
			ExitCode(ctx)
	}
	for node, ref := range refs {
		if code, err := verify(mine, ref); err != nil || code != 0 {
			return fmt.Errorf("%s: cosign verify with the signing key: exit %d, %v", node, code, err)
		}
		if code, err := verify(other, ref); err != nil || code == 0 {
			return fmt.Errorf("%s: cosign verify with another key passed (exit %d, %v)", node, code, err)
		}
	}
	for node, ref := range refs {
		if err := checkSBOM(ctx, reg, mine, ref); err != nil {
			return fmt.Errorf("%s: %w", node, err)
		}
	}
	again, err := buildAll("rerun")
	if err != nil {
		return err
	}
	if !maps.Equal(refs, again) {
		return fmt.Errorf("the rerun published other digests: %v, then %v", refs, again)
	}
	for _, kind := range []string{"sig", "att"} {
		n, err := reg.run(ctx, "count "+kind+" manifests", `grep -c 'PUT /v2/[^ ]*/manifests/sha256-[0-9a-f]*\.`+kind+`' /var/lib/registry/requests.log || true`)
		if err != nil {
			return err
		}
		if atoi(strings.TrimSpace(n)) != len(refs) {
			return fmt.Errorf("the registry received %s .%s manifests for %d nodes over two runs: a rerun signed or attested again what was done", strings.TrimSpace(n), kind, len(refs))
		}
	}
	return nil
}

// keyChecks runs build-all for nodes that trust another key than the one
// it signs with: it must refuse before it builds anything; and during a
// rotation, where the nodes trust the signing key and the images carry
// the other, it must go past that check (and then fail to publish to a
// registry that does not exist). A policy for the local registry would be
// refused, so these nodes name one that nobody reaches.
func keyChecks(ctx context.Context, mine, other *dagger.Directory, key, password string) error {
	kb := clusterAt("registry.invalid/e2e", clusterOpts{signingPublicKey: other.File("cosign.pub")})
	// The tools from their Go modules: the cluster's registry, where the
	// stand-ins of their images would be, is one nobody reaches.
	signing := dagger.KafkaBootcBuildAllOpts{
		SigningKey:      dag.SetSecret("e2e-cosign-key-checks-"+nonce(), key),
		SigningPassword: dag.SetSecret("e2e-cosign-password", password),
		ToolsFromSource: true,
	}
	_, err := kb.BuildAll(ctx, signing)
	if err == nil || !strings.Contains(err.Error(), "signing key: does not match the public key that the nodes trust") {
		return fmt.Errorf("build-all with a key the nodes do not trust: %v, want a refusal", err)
	}
	signing.TrustedPublicKey = mine.File("cosign.pub")
	_, err = kb.BuildAll(ctx, signing)
	if err == nil || strings.Contains(err.Error(), "signing key") || !strings.Contains(err.Error(), "registry.invalid") {
		return fmt.Errorf("build-all during a rotation: %v, want it to pass the key check and fail to publish to registry.invalid", err)
	}
	return nil
}

// registryTarget is a reference that build-all published, as a container
// bound to the registry service reaches it.
func registryTarget(ref string) string {
	return "kafka-bootc-registry:5000" + strings.TrimPrefix(ref[:strings.Index(ref, ":latest@")], registryHost) + ref[strings.Index(ref, "@"):]
}

// checkSBOM verifies the SBOM attestation of a published image with the
// key, and decodes it: an in-toto statement whose predicate is an SPDX
// document that lists packages.
func checkSBOM(ctx context.Context, reg registry, keys *dagger.Directory, ref string) error {
	out, err := cosign().WithServiceBinding("kafka-bootc-registry", reg.svc).
		WithMountedDirectory("/keys", keys).
		WithEnvVariable("RUN", nonce()).
		WithExec([]string{"cosign", "verify-attestation", "--key", "/keys/cosign.pub", "--insecure-ignore-tlog=true", "--type", "spdxjson",
			"--allow-http-registry", "--allow-insecure-registry", registryTarget(ref)}).
		Stdout(ctx)
	if err != nil {
		return fmt.Errorf("cosign verify-attestation: %w", err)
	}
	var envelope struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]), &envelope); err != nil {
		return fmt.Errorf("attestation: %w", err)
	}
	var statement struct {
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name string `json:"name"`
			} `json:"packages"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(envelope.Payload, &statement); err != nil {
		return fmt.Errorf("attestation payload: %w", err)
	}
	if !strings.HasPrefix(statement.Predicate.SPDXVersion, "SPDX-") || len(statement.Predicate.Packages) == 0 {
		return fmt.Errorf("the SBOM is not an SPDX document that lists packages: %s, version %q, %d packages",
			statement.PredicateType, statement.Predicate.SPDXVersion, len(statement.Predicate.Packages))
	}
	return nil
}
