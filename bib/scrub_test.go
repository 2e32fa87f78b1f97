package bib

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

const testKey = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgF3pXhmlW4FjK3ffd
3dJYbCfPbQ3qk0pTzZkQ2pGxPwyhRANCAAQ0yK1Lv2K8HcT4N8e0kqgFh6Lk1Ju3
-----END PRIVATE KEY-----
`

func TestScrubRemovesTheKeyInEveryFormBibWritesIt(t *testing.T) {
	cert := "-----BEGIN CERTIFICATE-----\nMIIBkzCCATmgAwIBAgIQ\n-----END CERTIFICATE-----\n"
	file := testKey + cert
	manifest := map[string]any{
		"version": "2",
		// osbuild's inline source: the file, base64, keyed by its digest.
		"sources": map[string]any{"org.osbuild.inline": map[string]any{"items": map[string]any{
			"sha256:0123": map[string]any{"encoding": "base64", "data": base64.StdEncoding.EncodeToString([]byte(file))},
			"sha256:4567": map[string]any{"encoding": "base64", "data": base64.StdEncoding.EncodeToString([]byte(cert))},
		}}},
		// A config copied as text, as bib's stand-in does.
		"config":   "[[customizations.files]]\npath = \"/etc/kafka-bootc/tls/node.pem\"\ndata = \"" + strings.ReplaceAll(file, "\n", `\n`) + "\"\n",
		"pipeline": []any{map[string]any{"type": "org.osbuild.copy", "paths": []any{"/etc/kafka-bootc/tls/node.pem"}}},
		"size":     23074963456,
	}
	data, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	key := NewSecret([]byte(testKey))
	if !key.In(data) {
		t.Fatal("the test manifest does not hold the key")
	}
	out, n, err := Scrub(data, key)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || key.In(out) || strings.Contains(string(out), "PRIVATE KEY") {
		t.Errorf("replaced %d strings, the key is still there: %v\n%s", n, key.In(out), out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("the scrubbed manifest is not JSON: %v", err)
	}
	items := got["sources"].(map[string]any)["org.osbuild.inline"].(map[string]any)["items"].(map[string]any)
	if d := items["sha256:4567"].(map[string]any)["data"]; d != base64.StdEncoding.EncodeToString([]byte(cert)) {
		t.Errorf("the certificate alone was changed too: %v", d)
	}
	if got["size"].(float64) != 23074963456 || got["pipeline"].([]any)[0].(map[string]any)["paths"].([]any)[0] != "/etc/kafka-bootc/tls/node.pem" {
		t.Errorf("the rest of the manifest changed:\n%s", out)
	}
}

func TestScrubRefusesWhatIsNotJSON(t *testing.T) {
	if _, _, err := Scrub([]byte("not json "+testKey), NewSecret([]byte(testKey))); err == nil || strings.Contains(err.Error(), "MIGH") {
		t.Errorf("error %v", err)
	}
}

// TestScrubRemovesAPullSecretBesideAKey: the pull secret, as osbuild's
// inline source holds it (the whole file, base64) and its credential as
// text, goes too; the node's key with it.
func TestScrubRemovesAPullSecretBesideAKey(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("me+robot:Zq3-token"))
	file := `{"auths":{"quay.io":{"auth":"` + auth + `"}}}`
	manifest, _ := json.Marshal(map[string]any{
		"inline": base64.StdEncoding.EncodeToString([]byte(file)),
		"key":    base64.StdEncoding.EncodeToString([]byte(testKey)),
		"config": "data = '" + file + "'",
		"path":   "/etc/ostree/auth.json",
	})
	pull := NewValuesSecret(auth, file)
	out, n, err := Scrub(manifest, NewSecret([]byte(testKey)), pull)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || pull.In(out) || strings.Contains(string(out), auth) || !strings.Contains(string(out), "/etc/ostree/auth.json") {
		t.Errorf("replaced %d:\n%s", n, out)
	}
	if len(NewValuesSecret("short").needles) != 0 {
		t.Errorf("a value of 5 characters is a needle: it would match too much")
	}
}

// TestScrubRemovesThePasswordHash: with --password, osbuild's users stage
// holds the user's crypt(3) hash; disks scrubs it as it scrubs the key.
func TestScrubRemovesThePasswordHash(t *testing.T) {
	hash := "$6$Wq0sE3Jt9q$wD6xkQ1Q3kq7o7u0k1J7m2m8x5kq0e1xT0n9y3jT6H0uQmH2bL2nQ5Kq7wR8b9Z4yQ1cA0dF7gH6jK5lM4nP3"
	manifest, _ := json.Marshal(map[string]any{"pipelines": []any{map[string]any{"stages": []any{
		map[string]any{"type": "org.osbuild.users", "options": map[string]any{"users": map[string]any{"core": map[string]any{"password": hash, "groups": []string{"wheel"}}}}},
	}}}})
	out, n, err := Scrub(manifest, NewValuesSecret(hash))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || strings.Contains(string(out), "$6$") || !strings.Contains(string(out), "wheel") {
		t.Errorf("replaced %d:\n%s", n, out)
	}
}

// TestScrubPassesEmptyStrings: a manifest holds empty strings (a user
// without a key, an empty option); each is base64 of nothing, and the scrub
// must pass it rather than decode it forever.
func TestScrubPassesEmptyStrings(t *testing.T) {
	manifest := []byte(`{"users":{"core":{"key":"","password":"   ","groups":[""]}},"data":"` + base64.StdEncoding.EncodeToString([]byte(testKey)) + `"}`)
	out, n, err := Scrub(manifest, NewSecret([]byte(testKey)))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || !strings.Contains(string(out), `"key": ""`) || strings.Contains(string(out), "PRIVATE") {
		t.Errorf("replaced %d:\n%s", n, out)
	}
}
