package nodes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/types"
)

// TestAuthFileLogsInAsContainersImageReadsIt: containers/image, which
// podman and skopeo use, finds each login by registry.
func TestAuthFileLogsInAsContainersImageReadsIt(t *testing.T) {
	data, err := AuthFile([]Login{{"quay.io", "me+robot", "p@ss:word"}, {"registry.example.com:5000", "ci", "t"}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "auth.json")
	os.WriteFile(file, data, 0o600)
	for ref, want := range map[string]string{
		"quay.io/me/kafka-broker-1":                  "me+robot:p@ss:word",
		"registry.example.com:5000/kafka/bootc-base": "ci:t",
		"ghcr.io/other/image":                        ":",
	} {
		cred, err := config.GetCredentials(&types.SystemContext{AuthFilePath: file}, ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := cred.Username + ":" + cred.Password; got != want {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
}

func TestRegistryHostNamesTheRegistryOfAReference(t *testing.T) {
	for ref, want := range map[string]string{
		"quay.io/centos-bootc/centos-bootc:stream9":     "quay.io",
		"docker.io/apache/kafka:3.8.0":                  "docker.io",
		"apache/kafka:3.8.0":                            "docker.io",
		"localhost:5000/e2e/kafka-broker-1@sha256:1234": "localhost:5000",
	} {
		if got := RegistryHost(ref); got != want {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
}

// TestARefusalSaysThatTheRegistryNeedsCredentials: no bare 401.
func TestARefusalSaysThatTheRegistryNeedsCredentials(t *testing.T) {
	for _, answer := range []string{
		"failed to resolve source metadata for quay.io/me/kafka-broker-1:latest: unexpected status from HEAD request to https://quay.io/v2/me/kafka-broker-1/manifests/latest: 401 UNAUTHORIZED",
		"failed to push quay.io/me/kafka-broker-1:latest: server message: insufficient_scope: authorization failed\n403 Forbidden",
		"Error: initializing source docker://quay.io/me/kafka-broker-1@sha256:12: reading manifest: requested access to the resource is denied",
	} {
		err := RegistryError("pulling", "quay.io/me/kafka-broker-1:latest", errors.New(answer))
		if !strings.HasPrefix(err.Error(), "pulling quay.io/me/kafka-broker-1:latest: the registry quay.io refused access: it needs credentials (with-registry-auth --address quay.io") {
			t.Errorf("%s:\n%v", answer, err)
		}
	}
	other := errors.New("dial tcp: lookup quay.io: no such host")
	if err := RegistryError("pulling", "quay.io/x/y:1", other); !errors.Is(err, other) || strings.Contains(err.Error(), "credentials") {
		t.Errorf("another error: %v", err)
	}
	if RegistryError("pulling", "quay.io/x/y:1", nil) != nil {
		t.Error("no error became one")
	}
}

func TestADigestOrAFilesPermissionIsNotARefusal(t *testing.T) {
	if Denied(errors.New("pulling quay.io/x/y@sha256:4030401ab: manifest unknown")) {
		t.Error("a digest holding 401 reads as a refusal")
	}
	if Denied(errors.New("process \"dnf -y install firewalld\" did not complete: open /var/cache/dnf/x: permission denied")) {
		t.Error("a file's permission reads as a registry's refusal")
	}
	if !Denied(errors.New("denied: denied")) {
		t.Error("GHCR's refusal is not one")
	}
}

// TestPreflightListsEveryImageAtOnce: a missing Kafka tag and a registry
// that wants a login, in one error, each named with its answer.
func TestPreflightListsEveryImageAtOnce(t *testing.T) {
	if PreflightError(nil) != nil {
		t.Error("no failure is an error")
	}
	err := PreflightError([]Unresolved{
		{"docker.io/apache/kafka:0.0.0-missing", errors.New("failed to resolve source metadata for docker.io/apache/kafka:0.0.0-missing: docker.io/apache/kafka:0.0.0-missing: not found\nmore detail")},
		{"quay.io/me/private-base:1", errors.New("unexpected status from HEAD request: 401 Unauthorized")},
	})
	want := "pre-flight: 2 image(s) cannot be resolved, so nothing was built:\n" +
		"  docker.io/apache/kafka:0.0.0-missing: failed to resolve source metadata for docker.io/apache/kafka:0.0.0-missing: docker.io/apache/kafka:0.0.0-missing: not found\n" +
		"  quay.io/me/private-base:1: the registry quay.io refused access: it needs credentials (with-registry-auth --address quay.io ...), or the ones given lack access to it"
	if err == nil || err.Error() != want {
		t.Errorf("%v\nwant\n%s", err, want)
	}
	c := plan(t, Default())
	if got := strings.Join(c.UpstreamImages(), " "); got != DefaultBaseImage+" "+DefaultKafkaImage+" "+DefaultExporterImage {
		t.Errorf("images %s", got)
	}
}
