package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/nodes"
	"dagger/kafka-bootc/pki"
)

// TestNoDiskSecretLeavesTheBuilderOutsideTheDisk builds bib's config for
// every combination of the flags that put a secret on a disk (--password,
// tls mode's CA, --pull-secret), for a broker and a controller, and checks
// what leaves the builder: the config must be mounted as a secret whenever
// it holds one, and a manifest holding the config's values in each form
// that bib writes them must hold none of them after the scrub. The
// manifest stands in for bootc-image-builder's: osbuild's users stage
// copies the password hash, its inline sources copy each file base64, and
// the fixture builder copies the config as text (bib/scrub_test.go holds
// each form). The run through the engine is tests/secrets_test.go.
func TestNoDiskSecretLeavesTheBuilderOutsideTheDisk(t *testing.T) {
	const hash = "$6$kP2x9Lq0Zr$3m1QeWcUu1o0q9kX7b2E5h8J4d6F0a1S2g3H4j5K6l7Z8x9C0v1B2n3M4q5W6e7R8t9Y0u1I2o3P4a5S6d7F8"
	now := time.Now()
	caCert, caKey, err := pki.NewCA("kafka-bootc test CA", 30, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caCert, caKey, now)
	if err != nil {
		t.Fatal(err)
	}
	token := "robot$disks:Zt7q-pull-token-0c41e9"
	pullData := []byte(`{"auths":{"quay.io/me":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(token)) + `"}}}`)

	for _, tls := range []bool{false, true} {
		for _, password := range []bool{false, true} {
			for _, pull := range []bool{false, true} {
				s := nodes.Default()
				s.Registry = "quay.io/me"
				s.Disk.SSHKeys = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAum8sY+RanpZcPfSfVjkVew1EYradPyCQndq1YzLuRh me@laptop"}
				if !tls {
					s.Security = nodes.SecurityPlaintext
				}
				c, err := nodes.Plan(s)
				if err != nil {
					t.Fatal(err)
				}
				spec := c.Disk
				var given []string // what must not leave, each as it is
				if password {
					if spec.PasswordHash, err = checkPasswordHash(spec, hash+"\n"); err != nil {
						t.Fatal(err)
					}
					given = append(given, hash)
				}
				var is *issuer
				if tls {
					is = &issuer{c: c, ca: ca, days: 30}
				}
				var ps *pullSecret
				if pull {
					values, err := c.CheckPullSecret(pullData)
					if err != nil {
						t.Fatal(err)
					}
					ps = &pullSecret{data: pullData, values: append(values, string(pullData))}
					given = append(given, token, base64.StdEncoding.EncodeToString([]byte(token)))
				}
				for _, name := range []string{"kafka-broker-1", "kafka-controller-1"} {
					t.Run(fmt.Sprintf("tls=%v,password=%v,pull-secret=%v,%s", tls, password, pull, name), func(t *testing.T) {
						n, err := c.Node(name)
						if err != nil {
							t.Fatal(err)
						}
						config, scrub, err := diskConfig(spec, n, is, ps)
						if err != nil {
							t.Fatal(err)
						}
						text, err := config.TOML()
						if err != nil {
							t.Fatal(err)
						}
						needles := append([]string{}, given...)
						if tls {
							key := keyOf(t, config)
							for _, line := range strings.Split(key, "\n") {
								if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
									needles = append(needles, line)
								}
							}
						}
						// Each secret is in the config in one of its forms
						// (the pull token base64, in its auth).
						for _, needle := range needles {
							if !strings.Contains(string(text), needle) && !strings.Contains(string(text), base64.StdEncoding.EncodeToString([]byte(needle))) {
								t.Fatalf("the config does not hold %.12s..., so this test proves nothing", needle)
							}
						}
						if (len(needles) > 0) != (len(scrub) > 0) {
							t.Errorf("%d secrets in the config, %d to scrub: the config is mounted as a secret only when there is something to scrub", len(needles), len(scrub))
						}
						out, _, err := bib.Scrub(standInManifest(t, config, text), scrub...)
						if err != nil {
							t.Fatal(err)
						}
						for _, needle := range needles {
							if strings.Contains(string(out), needle) {
								t.Errorf("the scrubbed manifest still holds %.12s...", needle)
							}
						}
						if strings.Contains(string(out), "PRIVATE KEY") {
							t.Error("the scrubbed manifest still holds a private key")
						}
						if tls && !strings.Contains(string(out), base64.StdEncoding.EncodeToString(ca.TrustPEM)) {
							t.Error("the scrub took the CA certificate too, which the manifest may keep")
						}
					})
				}
			}
		}
	}
}

func TestAnEmptyOrPlainPasswordIsRefusedBeforeAnyBuild(t *testing.T) {
	spec := nodes.Default().Disk
	for text, want := range map[string]string{
		"":                  "password: the secret is empty: give a crypt(3) hash",
		" \n":               "password: the secret is empty: give a crypt(3) hash",
		"kafka":             "password: must be a crypt(3) hash",
		"$6$ with space":    "password: must be a crypt(3) hash",
		"kafka\n$6$abc$def": "password: must be a crypt(3) hash",
	} {
		if _, err := checkPasswordHash(spec, text); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		} else if text != "" && strings.TrimSpace(text) != "" && strings.Contains(err.Error(), strings.TrimSpace(text)) {
			t.Errorf("%q: the error repeats the password: %v", text, err)
		}
	}
}

// keyOf is the node's private key in a config: the PEM block of node.pem.
func keyOf(t *testing.T, config bib.Config) string {
	t.Helper()
	for _, f := range config.Customizations.Files {
		if i := strings.Index(f.Data, "-----BEGIN PRIVATE KEY-----"); i >= 0 {
			end := "-----END PRIVATE KEY-----"
			return f.Data[i : strings.Index(f.Data, end)+len(end)]
		}
	}
	t.Fatal("no private key in the tls config")
	return ""
}

// standInManifest holds a config's values in each form that
// bootc-image-builder's manifest holds them.
func standInManifest(t *testing.T, config bib.Config, text []byte) []byte {
	t.Helper()
	users := map[string]any{}
	for _, u := range config.Customizations.User {
		users[u.Name] = map[string]any{"password": u.Password, "key": u.Key, "groups": u.Groups}
	}
	items := map[string]any{}
	for i, f := range config.Customizations.Files {
		items[fmt.Sprintf("sha256:%04d", i)] = map[string]any{"encoding": "base64", "data": base64.StdEncoding.EncodeToString([]byte(f.Data))}
	}
	data, err := json.Marshal(map[string]any{
		"version": "2",
		"sources": map[string]any{"org.osbuild.inline": map[string]any{"items": items}},
		"pipelines": []any{map[string]any{"stages": []any{
			map[string]any{"type": "org.osbuild.users", "options": map[string]any{"users": users}},
		}}},
		"config": string(text),
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}
