package nodes

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osbuild/images/pkg/policies"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/types"
)

func authOf(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// TestAPullSecretMustCoverEveryNodesRepository checks the lookup against
// containers/image's own (pkg/docker/config, which podman and bootc's
// skopeo use): for each pull secret, the secret is accepted exactly when
// that library finds credentials for every node's repository.
func TestAPullSecretMustCoverEveryNodesRepository(t *testing.T) {
	s := Default()
	s.Registry = "quay.io/me"
	c := plan(t, s)
	robot := authOf("me+robot", "s3cr3t-token-value")
	for _, tc := range []struct {
		name, secret, want string
	}{
		{"the registry", `{"auths":{"quay.io":{"auth":"` + robot + `"}}}`, ""},
		{"the namespace", `{"auths":{"quay.io/me":{"auth":"` + robot + `"}}}`, ""},
		{"another namespace", `{"auths":{"quay.io/you":{"auth":"` + robot + `"}}}`,
			"pull secret: holds no credentials for quay.io/me/kafka-broker-1, which kafka-broker-1 upgrades from"},
		{"one repository of six", `{"auths":{"quay.io/me/kafka-broker-1":{"auth":"` + robot + `"}}}`,
			"pull secret: holds no credentials for quay.io/me/kafka-broker-2"},
		{"another registry", `{"auths":{"ghcr.io":{"auth":"` + robot + `"}}}`, "holds no credentials for quay.io/me/kafka-broker-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CheckPullSecret([]byte(tc.secret))
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
			file := filepath.Join(t.TempDir(), "auth.json")
			os.WriteFile(file, []byte(tc.secret), 0o600)
			covered := true
			for _, n := range c.Nodes {
				repo := strings.TrimSuffix(c.Ref(n), ":"+c.Tag)
				cred, err := config.GetCredentials(&types.SystemContext{AuthFilePath: file}, repo)
				if err != nil {
					t.Fatal(err)
				}
				covered = covered && cred.Username == "me+robot"
			}
			if covered != (err == nil) {
				t.Errorf("containers/image finds credentials for every node: %v; the check says %v", covered, err)
			}
		})
	}
}

func TestAPullSecretThatIsNotOneIsRefusedWithoutQuotingIt(t *testing.T) {
	s := Default()
	s.Registry = "quay.io/me"
	c := plan(t, s)
	for secret, want := range map[string]string{
		`user:hunter2-password`:                         "pull secret: not a containers-auth.json file",
		`{"auths":{}}`:                                  "pull secret: holds no credentials",
		`{"auths":{"quay.io":{}}}`:                      `pull secret: the entry "quay.io" has no "auth"`,
		`{"auths":{"quay.io":{"auth":"hunter2!!"}}}`:    `pull secret: the "auth" of "quay.io" is not base64 of user:password`,
		`{"auths":{"quay.io":{"auth":"aHVudGVyMg=="}}}`: `pull secret: the "auth" of "quay.io" is not base64 of user:password`,
	} {
		_, err := c.CheckPullSecret([]byte(secret))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "aHVudGVyMg") {
			t.Errorf("%s: %v, want %q", secret, err, want)
		}
	}
	plain := plan(t, Default())
	if _, err := plain.CheckPullSecret([]byte(`{"auths":{"quay.io":{"auth":"` + authOf("a", "b") + `"}}}`)); err == nil || !strings.Contains(err.Error(), "without a registry") {
		t.Errorf("without a registry: %v", err)
	}
}

// TestAPullSecretIsAFileBibWritesWhereBootcReadsIt: decoded as bib does,
// allowed by bib's policy for bootc disks, root-only, and its directory,
// which the base image has, made only if it is missing (osbuild's mkdir
// with exist_ok, as osbuild/images generates it).
func TestAPullSecretIsAFileBibWritesWhereBootcReadsIt(t *testing.T) {
	secret := `{"auths":{"quay.io":{"auth":"` + authOf("me+robot", "token") + `"}}}`
	files, dirs := asBibWritesThem(t)(PullSecretFiles([]byte(secret)))
	if len(files) != 1 || files[0].Path() != "/etc/ostree/auth.json" || *files[0].Mode() != 0o600 || files[0].User() != "root" || string(files[0].Data()) != secret {
		t.Fatalf("files %+v", files)
	}
	if err := policies.OstreeCustomFilesPolicies.Check(files[0].Path()); err != nil {
		t.Errorf("bib refuses %s on a bootc disk: %v", files[0].Path(), err)
	}
	for _, d := range dirs {
		if err := policies.OstreeCustomDirectoriesPolicies.Check(d.Path()); err != nil {
			t.Errorf("bib refuses directory %s: %v", d.Path(), err)
		}
	}
	for _, d := range dirs {
		// osbuild/images (pkg/osbuild/fsnode.go, GenDirectoryNodesStages)
		// makes a directory with exist_ok only when it has no mode, user
		// or group; otherwise mkdir fails where it exists.
		if d.Mode() != nil || d.User() != nil || d.Group() != nil {
			t.Errorf("%s: has a mode or owner: mkdir would fail where the base image has it", d.Path())
		}
	}
}
