package nodes

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/distribution/reference"
)

// Where a node image keeps what makes the node enforce signatures.
const (
	// SigningKeyPath is the cosign public key that node images must be
	// signed with. It is under /usr, so it moves with the image: an image
	// signed by the old key can ship the next key.
	SigningKeyPath = "/usr/share/kafka-bootc/signing/cosign.pub"
	// policyPath is containers/image's signature policy, which bootc,
	// podman and skopeo read.
	policyPath = "/etc/containers/policy.json"
	// registriesDPath tells containers/image where signatures live: as
	// cosign attaches them, in the image's repository.
	registriesDPath = "/etc/containers/registries.d/kafka-bootc.yaml"
	// installConfigPath makes bootc install (as bootc-image-builder runs
	// it) record the node's image with signature enforcement: the origin's
	// ostree-image-signed transport, which bootc upgrade keeps. bootc reads
	// the key since 1.15.2 (bootc-dev/bootc commit 1535ded7); older bootc
	// refuses the file (its install config denies unknown keys), so a disk
	// is never built without enforcement by mistake.
	installConfigPath = "/usr/lib/bootc/install/50-kafka-bootc.toml"
)

// CheckSigningPublicKey reports whether pemText is a public key that
// cosign signs with: ECDSA, RSA (at least 2048 bits) or Ed25519, PEM.
func CheckSigningPublicKey(pemText string) error {
	block, rest := pem.Decode([]byte(pemText))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		return errors.New("signing public key: must be one PEM public key, as cosign generate-key-pair writes cosign.pub")
	}
	if block.Type != "PUBLIC KEY" {
		return fmt.Errorf("signing public key: holds a PEM %q block, not a PUBLIC KEY (give cosign.pub, never cosign.key)", block.Type)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("signing public key: not a valid public key: %v", err)
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("signing public key: an RSA key of %d bits: must have at least 2048", k.N.BitLen())
		}
	default:
		return fmt.Errorf("signing public key: a %T key: must be ECDSA, RSA or Ed25519", key)
	}
	return nil
}

// checkSigningRegistry refuses a policy for a registry that a node cannot
// reach under that name: a node's policy names the repositories it pulls,
// and a registry on the build machine's loopback is not the node's.
func checkSigningRegistry(registry string) error {
	if registry == "" {
		return errors.New("signing public key: given for a cluster without a registry: the policy names the repositories that the nodes upgrade from")
	}
	host, _, _ := strings.Cut(registry, "/")
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	if ip := net.ParseIP(name); name == "localhost" || (ip != nil && ip.IsLoopback()) {
		return fmt.Errorf("signing public key: registry %q is the build machine's loopback, which no node reaches under that name; publish to a registry the nodes reach", registry)
	}
	return nil
}

// policyRequirement is one requirement of containers-policy.json(5).
type policyRequirement struct {
	Type           string          `json:"type"`
	KeyPath        string          `json:"keyPath,omitempty"`
	SignedIdentity *signedIdentity `json:"signedIdentity,omitempty"`
}

type signedIdentity struct {
	Type string `json:"type"`
}

// signingPolicy is the node's containers-policy.json: the node images (the
// whole registry namespace, so that a new node needs no new policy) must be
// signed by the key; the bound Kafka and node-exporter images, which their
// publishers sign with keys this cluster does not know, are accepted as
// they are; local transports are accepted; anything else is rejected.
// bootc refuses to upgrade with signature enforcement under a policy whose
// default accepts anything (ostree-ext's container_policy_is_default_insecure).
//
// The identity is matchRepository: cosign signs a digest and records the
// repository alone, while bootc pulls the node's tag, which the default
// (matchRepoDigestOrExact) would require the signature to name exactly.
func (c *Cluster) signingPolicy() ([]byte, error) {
	accept := []policyRequirement{{Type: "insecureAcceptAnything"}}
	docker := map[string][]policyRequirement{
		c.Registry: {{Type: "sigstoreSigned", KeyPath: SigningKeyPath, SignedIdentity: &signedIdentity{Type: "matchRepository"}}},
	}
	for _, img := range []string{c.KafkaImage, c.ExporterImage} {
		named, err := reference.ParseNormalizedNamed(img)
		if err != nil {
			return nil, err
		}
		docker[named.Name()] = accept
	}
	policy := map[string]any{
		"default": []policyRequirement{{Type: "reject"}},
		"transports": map[string]any{
			"docker":             docker,
			"containers-storage": map[string][]policyRequirement{"": accept},
			"docker-daemon":      map[string][]policyRequirement{"": accept},
		},
	}
	out, err := json.MarshalIndent(policy, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// registriesD makes containers/image look for sigstore signatures attached
// to the node images, where cosign puts them.
func (c *Cluster) registriesD() []byte {
	return fmt.Appendf(nil, `# Rendered by kafka-bootc: the node images' signatures are attached to
# them in their registry, as cosign attaches them.
docker:
  %s:
    use-sigstore-attachments: true
`, c.Registry)
}

// installConfig makes bootc install record the image with enforcement.
const installConfig = `# Rendered by kafka-bootc: install the node with signature enforcement,
# so that bootc upgrade verifies every image against /etc/containers/policy.json.
[install]
enforce-container-sigpolicy = true
`

// signingFiles are the files of a role image that make its nodes enforce
// signatures; none without a signing public key.
func (c *Cluster) signingFiles() ([]File, error) {
	if c.SigningPublicKey == "" {
		return nil, nil
	}
	policy, err := c.signingPolicy()
	if err != nil {
		return nil, err
	}
	return []File{
		{Path: SigningKeyPath, Content: []byte(c.SigningPublicKey), Mode: 0o644},
		{Path: policyPath, Content: policy, Mode: 0o644},
		{Path: registriesDPath, Content: c.registriesD(), Mode: 0o644},
		{Path: installConfigPath, Content: []byte(installConfig), Mode: 0o644},
	}, nil
}

// CosignSignArgs is cosign sign's command line, but for the image, with
// the private key at key (a file, or env://VAR). It asks for what
// containers/image reads: a signature in the legacy layout, a
// sha256-<digest>.sig tag in the image's repository, which is cosign v2's
// default (cosign v2.6 sign --help: --new-bundle-format=false,
// --use-signing-config=false); cosign 3 writes Sigstore bundles instead
// unless told otherwise, so the flags are explicit. The signature goes to
// no public transparency log: the nodes check it with the key alone.
func CosignSignArgs(key string) []string {
	return []string{"sign", "--key", key, "--yes", "--tlog-upload=false", "--new-bundle-format=false", "--use-signing-config=false"}
}

// CosignRef is how cosign reaches a digest that build-all published.
type CosignRef struct {
	// Target is the digest in its repository.
	Target string
	// Transport are the flags that reach the registry: none, or plain
	// HTTP for a stand-in (cosign verify needs both flags for it).
	Transport []string
	// Identity sets the signed identity when Target is not the published
	// name.
	Identity []string
}

// CosignTarget is what cosign signs for a reference that build-all
// published (<registry>/<node>:<tag>@sha256:...). When via is set, the
// registry is a stand-in reached under that host (a Dagger service bound
// under another name): cosign reaches it there, over plain HTTP, and
// records the published repository as the signed identity, which is what
// nodes check.
func CosignTarget(published, via string) (CosignRef, error) {
	named, err := reference.ParseNamed(published)
	if err != nil {
		return CosignRef{}, fmt.Errorf("signing %q: %w", published, err)
	}
	digested, ok := named.(reference.Digested)
	if !ok {
		return CosignRef{}, fmt.Errorf("signing %q: not pinned by digest", published)
	}
	if via == "" {
		return CosignRef{Target: named.Name() + "@" + digested.Digest().String()}, nil
	}
	return CosignRef{
		Target:    via + "/" + reference.Path(named) + "@" + digested.Digest().String(),
		Transport: []string{"--allow-http-registry", "--allow-insecure-registry"},
		Identity:  []string{"--sign-container-identity", named.Name()},
	}, nil
}

// SamePublicKey reports whether two PEM public keys are the same key.
func SamePublicKey(a, b string) (bool, error) {
	parse := func(text string) (any, error) {
		block, _ := pem.Decode([]byte(text))
		if block == nil {
			return nil, errors.New("not PEM")
		}
		return x509.ParsePKIXPublicKey(block.Bytes)
	}
	ka, err := parse(a)
	if err != nil {
		return false, err
	}
	kb, err := parse(b)
	if err != nil {
		return false, err
	}
	eq, ok := ka.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(kb), nil
}

// CosignAttestArgs is cosign attest's command line, but for the image and
// the transport flags: the SBOM at predicate, as an SPDX JSON attestation
// signed with the key at key, in the same legacy layout as the signatures
// (a sha256-<digest>.att tag), replacing an earlier SBOM attestation of the
// same image.
func CosignAttestArgs(key, predicate string) []string {
	return []string{"attest", "--key", key, "--type", "spdxjson", "--predicate", predicate, "--replace",
		"--tlog-upload=false", "--new-bundle-format=false", "--use-signing-config=false"}
}

// The signing tools' released images, pinned by digest (multi-arch
// indexes), and where their binaries are, as the projects build them:
// cosign with ko (.ko.yaml: gcr.io/distroless/static-debian12:nonroot as
// the base; ko puts the binary at /ko-app/cosign), syft with goreleaser
// (Dockerfile: FROM scratch with CA certificates, COPY syft /, WORKDIR
// /tmp, ENTRYPOINT ["/syft"]).
const (
	DefaultCosignImage = "ghcr.io/sigstore/cosign/cosign:v2.6.3@sha256:4bedb8de1c5c1abd8dea60de704ba449402d238623fa8bb33d2ccaa9beffcbf5"
	CosignImagePath    = "/ko-app/cosign"
	DefaultSyftImage   = "docker.io/anchore/syft:v1.50.0@sha256:1288ea4c8b38767b4e620c1e312c8cb26b6e887a99b4f07ab6cd19fc6f225026"
	SyftImagePath      = "/syft"
)

// CheckToolImage reports whether ref can stand for a signing tool's image
// (a mirror of it, say): fully qualified and pinned by digest, since the
// tool holds the signing key.
func CheckToolImage(field, ref string) error {
	named, err := parseQualified(ref)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if _, ok := named.(reference.Digested); !ok {
		return fmt.Errorf("%s %q: must be pinned by digest (@sha256:...): the tool holds the signing key", field, ref)
	}
	return nil
}
