// Signing: cosign signs published digests and attaches syft's SBOMs.

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
)

// cosignModule and syftModule are the tools built from their Go modules,
// with --tools-from-source, and goImage what builds them. The default is
// the projects' released images (nodes.DefaultCosignImage and
// nodes.DefaultSyftImage), which cost a pull instead of a compile.
const (
	cosignModule = "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.3"
	// syftModule makes the SBOMs. Its rpmdb cataloger also looks in
	// /usr/share/rpm, where ostree-based images such as centos-bootc keep
	// the rpmdb (anchore/syft#1755, fixed in 2023).
	syftModule = "github.com/anchore/syft/cmd/syft@v1.57.1"
	goImage    = "docker.io/library/golang:1.26"
	// registryAlias is the name a registry service is bound under in the
	// signing container: "localhost" is the container's own.
	registryAlias = "kafka-bootc-registry"
)

// signingTools are the containers that hold cosign and syft, and where.
type signingTools struct {
	cosign, syft         *dagger.Container
	cosignPath, syftPath string
}

// tools gives cosign and syft from their released images, or from their
// Go modules, built, when fromSource is set. The images run as root, so
// that they read the secrets mounted for them: cosign's is distroless's
// nonroot user otherwise. An image on the cluster registry's host comes
// from registryService when there is one, as a base image does.
func (m *KafkaBootc) tools(c *nodes.Cluster, registryService *dagger.Service, fromSource bool, cosignImage, syftImage string) signingTools {
	if fromSource {
		return signingTools{cosign: m.goTool(cosignModule), syft: m.goTool(syftModule),
			cosignPath: "/usr/local/bin/cosign", syftPath: "/usr/local/bin/syft"}
	}
	return signingTools{
		cosign:     m.pullVia(c, registryService, cosignImage).WithUser("0").WithEnvVariable("HOME", "/root"),
		cosignPath: nodes.CosignImagePath,
		syft:       m.pullVia(c, registryService, syftImage).WithUser("0"),
		syftPath:   nodes.SyftImagePath,
	}
}

// signer signs published digests with cosign.
type signer struct {
	tool *dagger.Container
	// sbom is the container that makes SBOMs (syft).
	sbom *dagger.Container
	// cosign and syft are the tools' paths in their containers.
	cosign, syft string
	// via is the host cosign reaches a registry service at, or empty.
	via string
}

// newSigner makes the cosign container with the key, its password and the
// registry's credentials, all as secrets, and checks that cosign can read
// the key and that it matches trusted, the public key that the nodes
// trust, if there is one.
func (m *KafkaBootc) newSigner(ctx context.Context, c *nodes.Cluster, tools signingTools, trusted string, key, password *dagger.Secret, registryService *dagger.Service) (*signer, error) {
	tool := tools.cosign.WithSecretVariable("COSIGN_KEY", key)
	if password != nil {
		tool = tool.WithSecretVariable("COSIGN_PASSWORD", password)
	} else {
		tool = tool.WithEnvVariable("COSIGN_PASSWORD", "")
	}
	// An exec that fails would hide this message behind its exit code.
	read := tool.WithExec([]string{tools.cosignPath, "public-key", "--key", "env://COSIGN_KEY"}, dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny})
	code, err := read.ExitCode(ctx)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		stderr, _ := read.Stderr(ctx)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		return nil, fmt.Errorf("signing key: cosign cannot open it as a cosign private key with the given --signing-password (%s)", lines[len(lines)-1])
	}
	pub, err := read.Stdout(ctx)
	if err != nil {
		return nil, err
	}
	if trusted != "" {
		same, err := nodes.SamePublicKey(pub, trusted)
		if err != nil {
			return nil, fmt.Errorf("signing key: its public key: %w", err)
		}
		if !same {
			return nil, errors.New("signing key: does not match the public key that the nodes trust (--signing-public-key, or --trusted-public-key during a rotation): they would refuse every image it signs")
		}
	}
	s := &signer{tool: tool.WithNewFile("/kafka-bootc/cosign.pub", pub), sbom: tools.syft, cosign: tools.cosignPath, syft: tools.syftPath}
	if registryService != nil {
		_, port, _ := strings.Cut(c.Host(), ":")
		s.via = registryAlias
		if port != "" {
			s.via += ":" + port
		}
		s.tool = s.tool.WithServiceBinding(registryAlias, registryService)
	}
	// cosign reads a Docker config.json, whose format containers-auth.json
	// shares.
	if s.tool, err = m.withAuthFile(ctx, s.tool, "/root/.docker/config.json", c.Host(), s.via); err != nil {
		return nil, err
	}
	return s, nil
}

// goTool is a Go program built from its module, at the version named.
func (m *KafkaBootc) goTool(module string) *dagger.Container {
	return m.pull(goImage).
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("kafka-bootc-go-mod")).
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("kafka-bootc-go-build")).
		WithEnvVariable("GOBIN", "/usr/local/bin").
		WithExec([]string{"go", "install", module}).
		WithoutMount("/go/pkg/mod").
		WithoutMount("/root/.cache/go-build")
}

// signAndAttest signs a digest that build-all published, and attaches an
// SBOM of image: SPDX JSON from syft, as an attestation signed with the
// key. Each step runs every time, since the registry may have lost what an
// earlier run wrote, and writes only what cosign does not find signed by
// the key.
func (s *signer) signAndAttest(ctx context.Context, published string, image *dagger.Container) error {
	ref, err := nodes.CosignTarget(published, s.via)
	if err != nil {
		return err
	}
	run := s.tool.WithEnvVariable("KAFKA_BOOTC_SIGNING_RUN", time.Now().Format(time.RFC3339Nano))
	// found runs a cosign check with the key; the signatures go to no
	// transparency log (see CosignSignArgs).
	found := func(check ...string) (bool, error) {
		argv := append(append([]string{s.cosign}, check...), "--key", "/kafka-bootc/cosign.pub", "--insecure-ignore-tlog=true")
		argv = append(append(argv, ref.Transport...), ref.Target)
		code, err := run.WithExec(argv, dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny}).ExitCode(ctx)
		return code == 0, err
	}

	signed, err := found("verify")
	if err != nil {
		return fmt.Errorf("checking the signature of %s: %w", published, err)
	}
	if !signed {
		args := append(append([]string{s.cosign}, nodes.CosignSignArgs("env://COSIGN_KEY")...), ref.Transport...)
		args = append(append(args, ref.Identity...), ref.Target)
		if _, err := run.WithExec(args).Sync(ctx); err != nil {
			return fmt.Errorf("signing %s: %w", published, err)
		}
	}

	attested, err := found("verify-attestation", "--type", "spdxjson")
	if err != nil {
		return fmt.Errorf("checking the SBOM of %s: %w", published, err)
	}
	if attested {
		return nil
	}
	sbom := s.sbom.
		WithMountedFile("/kafka-bootc/image.tar", image.AsTarball()).
		WithExec([]string{s.syft, "scan", "oci-archive:/kafka-bootc/image.tar", "--output", "spdx-json=/kafka-bootc/sbom.spdx.json"}).
		File("/kafka-bootc/sbom.spdx.json")
	args := append(append([]string{s.cosign}, nodes.CosignAttestArgs("env://COSIGN_KEY", "/kafka-bootc/sbom.spdx.json")...), ref.Transport...)
	if _, err := run.WithMountedFile("/kafka-bootc/sbom.spdx.json", sbom).WithExec(append(args, ref.Target)).Sync(ctx); err != nil {
		return fmt.Errorf("attaching the SBOM of %s: %w", published, err)
	}
	return nil
}
