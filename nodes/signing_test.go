package nodes

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"dagger/kafka-bootc/internal/containertest"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/directory"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/sigstore"
	"go.podman.io/image/v5/types"
)

// ociImage writes a one-file image as an OCI layout and returns it.
func ociImage(t *testing.T, content string) types.ImageReference {
	t.Helper()
	dir := t.TempDir()
	var layer, tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "content", Mode: 0o644, Size: int64(len(content))})
	tw.Write([]byte(content))
	tw.Close()
	gz := gzip.NewWriter(&layer)
	gz.Write(tarball.Bytes())
	gz.Close()
	blob := func(data []byte) string {
		sum := sha256.Sum256(data)
		os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", fmt.Sprintf("%x", sum)), data, 0o644)
		return fmt.Sprintf("sha256:%x", sum)
	}
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(tarball.Bytes()))
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, diffID)
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		blob(config), len(config), blob(layer.Bytes()), layer.Len())
	index := fmt.Appendf(nil, `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}`,
		blob(manifest), len(manifest))
	os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	ref, err := layout.NewReference(dir, "latest")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func dockerRef(t *testing.T, ref string) types.ImageReference {
	t.Helper()
	r, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signingCluster is the default cluster with a signing key, its registry
// and Kafka image moved to a test registry (Plan refuses a loopback
// registry for a policy, which no node could reach).
func signingCluster(t *testing.T, registry, publicKey string) *Cluster {
	t.Helper()
	s := exampleSpec()
	s.Registry = "registry.example.com/me"
	s.SigningPublicKey = publicKey
	c := plan(t, s)
	c.Registry = registry + "/me"
	c.KafkaImage = registry + "/apache/kafka:3.8.0"
	return c
}

// nodePolicy writes a role image's policy and registries.d into dir, as a
// node has them, with the key where the policy names it under dir.
func nodePolicy(t *testing.T, c *Cluster, dir string) (*signature.PolicyContext, *types.SystemContext) {
	t.Helper()
	files, err := c.signingFiles()
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.Path] = f.Content
		p := filepath.Join(dir, f.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, f.Content, 0o644)
	}
	// The node reads the key at its absolute path; here it is under dir.
	policyJSON := strings.ReplaceAll(string(byPath[policyPath]), `"`+SigningKeyPath+`"`, `"`+filepath.Join(dir, SigningKeyPath)+`"`)
	policy, err := signature.NewPolicyFromBytes([]byte(policyJSON))
	if err != nil {
		t.Fatalf("containers/image refuses the policy: %v\n%s", err, policyJSON)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Destroy() })
	return pc, &types.SystemContext{
		RegistriesDirPath:           filepath.Join(dir, filepath.Dir(registriesDPath)),
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
	}
}

// push copies an image into the registry, signed with key when it is set.
func push(t *testing.T, src types.ImageReference, dest string, keyFile string, passphrase []byte, sys *types.SystemContext) {
	t.Helper()
	accept, _ := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	defer accept.Destroy()
	opts := &copy.Options{DestinationCtx: sys, SignBySigstorePrivateKeyFile: keyFile, SignSigstorePrivateKeyPassphrase: passphrase}
	if _, err := copy.Image(context.Background(), accept, dockerRef(t, dest), src, opts); err != nil {
		t.Fatalf("push %s: %v", dest, err)
	}
}

// pull copies an image out of the registry as a node would, under its
// policy, and returns the error that the policy gives.
func pull(t *testing.T, pc *signature.PolicyContext, sys *types.SystemContext, src string) error {
	t.Helper()
	dest, err := directory.NewReference(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = copy.Image(context.Background(), pc, dest, dockerRef(t, src), &copy.Options{SourceCtx: sys})
	return err
}

// TestNodesPullOnlySignedNodeImages is the node's side, with
// containers/image (what bootc, podman and skopeo use) as the verifier: with
// a role image's policy.json and registries.d, a node image signed with the
// cluster's key is pulled; one unsigned or signed with another key is
// refused; the bound Kafka image, which its publisher signs with a key the
// cluster does not know, is pulled unsigned; anything else is refused.
func TestNodesPullOnlySignedNodeImages(t *testing.T) {
	registry, _ := containertest.Registry(t)
	dir := t.TempDir()
	passphrase := []byte("test passphrase")
	keys, err := sigstore.GenerateKeyPair(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sigstore.GenerateKeyPair(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, otherFile := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "other.key")
	os.WriteFile(keyFile, keys.PrivateKey, 0o600)
	os.WriteFile(otherFile, other.PrivateKey, 0o600)

	c := signingCluster(t, registry, string(keys.PublicKey))
	pc, sys := nodePolicy(t, c, filepath.Join(dir, "node"))

	push(t, ociImage(t, "broker 1"), c.Registry+"/kafka-broker-1:latest", keyFile, passphrase, sys)
	push(t, ociImage(t, "broker 2"), c.Registry+"/kafka-broker-2:latest", "", nil, sys)
	push(t, ociImage(t, "broker 3"), c.Registry+"/kafka-broker-3:latest", otherFile, passphrase, sys)
	push(t, ociImage(t, "kafka"), c.KafkaImage, "", nil, sys)
	push(t, ociImage(t, "other"), registry+"/other/thing:1", "", nil, sys)

	for ref, want := range map[string]string{
		c.Registry + "/kafka-broker-1:latest": "",
		c.Registry + "/kafka-broker-2:latest": "A signature was required, but no signature exists",
		c.Registry + "/kafka-broker-3:latest": "cryptographic signature verification failed",
		c.KafkaImage:                          "",
		registry + "/other/thing:1":           "Running image docker://" + registry + "/other/thing:1 is rejected by policy",
	} {
		err := pull(t, pc, sys, ref)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: refused: %v", ref, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want one containing %q", ref, err, want)
		}
	}

	// cosign itself, as build-all runs it, when it is installed.
	cosign := os.Getenv("KAFKA_BOOTC_COSIGN")
	if cosign == "" {
		t.Log("cosign-made signatures not checked: set KAFKA_BOOTC_COSIGN to a cosign v2 binary (.ci/run does)")
		return
	}
	ref := c.Registry + "/kafka-broker-2:latest"
	digest, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	args := append(CosignSignArgs(keyFile), "--allow-http-registry", c.Registry+"/kafka-broker-2@"+strings.TrimSpace(string(digest)))
	cmd := exec.Command(cosign, args...)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+string(passphrase))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := pull(t, pc, sys, ref); err != nil {
		t.Errorf("a node image signed by cosign is refused: %v", err)
	}
}

// TestThePolicyMakesBootcEnforce checks what bootc needs to enforce
// signatures at install and upgrade: a policy whose default is not
// insecureAcceptAnything (bootc refuses to pull an ostree-image-signed
// image under one), and the install config key that bootc install reads.
func TestThePolicyMakesBootcEnforce(t *testing.T) {
	s := exampleSpec()
	s.Registry = "quay.io/me"
	s.SigningPublicKey = testPublicKey(t)
	c := plan(t, s)
	img, err := c.RoleImage(Broker)
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		Default []struct{ Type string } `json:"default"`
	}
	if err := json.Unmarshal(fileOf(t, img, policyPath), &policy); err != nil {
		t.Fatal(err)
	}
	for _, r := range policy.Default {
		if r.Type == "insecureAcceptAnything" {
			t.Errorf("the policy's default accepts anything; bootc refuses to upgrade under it")
		}
	}
	var install struct {
		Install map[string]any `toml:"install"`
	}
	if _, err := toml.Decode(string(fileOf(t, img, installConfigPath)), &install); err != nil {
		t.Fatal(err)
	}
	if install.Install["enforce-container-sigpolicy"] != true {
		t.Errorf("install config %v does not enforce the policy", install.Install)
	}
	if string(fileOf(t, img, SigningKeyPath)) != s.SigningPublicKey {
		t.Errorf("the image does not carry the public key at %s", SigningKeyPath)
	}
	// Without a key, none of it.
	plain := plan(t, exampleSpec())
	img, _ = plain.RoleImage(Broker)
	for _, f := range img.Files {
		if f.Path == policyPath || f.Path == installConfigPath || f.Path == SigningKeyPath {
			t.Errorf("%s without a signing key", f.Path)
		}
	}
}

func testPublicKey(t *testing.T) string {
	t.Helper()
	keys, err := sigstore.GenerateKeyPair([]byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	return string(keys.PublicKey)
}

func TestSigningInputIsChecked(t *testing.T) {
	key := testPublicKey(t)
	for name, tc := range map[string]struct {
		registry, key, want string
	}{
		"a private key":       {"quay.io/me", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "not a PUBLIC KEY (give cosign.pub, never cosign.key)"},
		"text":                {"quay.io/me", "cosign.pub", "signing public key: must be one PEM public key"},
		"no registry":         {"", key, "signing public key: given for a cluster without a registry"},
		"a loopback registry": {"localhost:5000/me", key, `registry "localhost:5000/me" is the build machine's loopback`},
		"127.0.0.1":           {"127.0.0.1:5000/me", key, "is the build machine's loopback"},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			s := exampleSpec()
			s.Registry, s.SigningPublicKey = tc.registry, tc.key
			if _, err := Plan(s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCosignSignsTheDigestUnderThePublishedName(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ref, err := CosignTarget("quay.io/me/kafka-broker-1:latest@"+digest, "")
	if err != nil || ref.Target != "quay.io/me/kafka-broker-1@"+digest || ref.Transport != nil || ref.Identity != nil {
		t.Errorf("direct: %+v %v", ref, err)
	}
	ref, err = CosignTarget("localhost:5000/e2e/kafka-broker-1:latest@"+digest, "kafka-bootc-registry:5000")
	if err != nil || ref.Target != "kafka-bootc-registry:5000/e2e/kafka-broker-1@"+digest ||
		strings.Join(ref.Identity, " ") != "--sign-container-identity localhost:5000/e2e/kafka-broker-1" ||
		strings.Join(ref.Transport, " ") != "--allow-http-registry --allow-insecure-registry" {
		t.Errorf("through a service: %+v %v", ref, err)
	}
	if _, err := CosignTarget("quay.io/me/kafka-broker-1:latest", ""); err == nil {
		t.Error("a tag alone is signed; a tag moves")
	}
}

func TestSamePublicKey(t *testing.T) {
	a, b := testPublicKey(t), testPublicKey(t)
	if same, err := SamePublicKey(a, strings.ReplaceAll(a, "\n", "\r\n")); err != nil || !same {
		t.Errorf("a key is not itself: %v %v", same, err)
	}
	if same, err := SamePublicKey(a, b); err != nil || same {
		t.Errorf("two keys are one: %v %v", same, err)
	}
	if _, err := SamePublicKey(a, "nope"); err == nil {
		t.Error("text is a key")
	}
}
