package bib

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Redacted replaces, in a scrubbed manifest, a string that held a secret.
const Redacted = "redacted by kafka-bootc: it held a private key or a pull secret, which exists only on the disk"

// Secret is text that must leave the builder only inside the disk. Its
// needles are what gives it away: each line of a PEM block's base64 body
// (64 characters of the key's DER), which survive any quoting and any
// re-wrapping that keeps whole lines.
type Secret struct {
	needles [][]byte
}

// NewSecret makes a Secret of PEM text: every body line of at least 16
// characters is a needle.
func NewSecret(pemText []byte) Secret {
	var s Secret
	for _, line := range bytes.Split(pemText, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) >= 16 && !bytes.HasPrefix(line, []byte("-----")) {
			s.needles = append(s.needles, line)
		}
	}
	return s
}

// NewValuesSecret makes a Secret of credentials, such as a pull secret's
// "auth" values: each value of at least 8 characters is a needle.
func NewValuesSecret(values ...string) Secret {
	var s Secret
	for _, v := range values {
		if len(v) >= 8 {
			s.needles = append(s.needles, []byte(v))
		}
	}
	return s
}

// In reports whether data holds any part of the secret, as it is or
// base64-encoded as a whole (as osbuild's inline sources hold files).
func (s Secret) In(data []byte) bool {
	for _, n := range s.needles {
		if bytes.Contains(data, n) {
			return true
		}
	}
	// Decoding shortens, so this ends; an empty string decodes to itself.
	if text := strings.TrimSpace(string(data)); text != "" {
		if decoded, err := base64.StdEncoding.DecodeString(text); err == nil {
			return s.In(decoded)
		}
	}
	return false
}

// Scrub replaces every JSON string of a manifest that holds a secret with
// Redacted, and reports how many it replaced. bootc-image-builder copies
// the contents of [[customizations.files]] into its manifest (osbuild's
// inline sources, base64), which is exported next to the disk; the key must
// exist only inside the disk.
func Scrub(manifest []byte, secrets ...Secret) ([]byte, int, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(manifest))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, 0, fmt.Errorf("bib manifest: not JSON: %w", err)
	}
	n := 0
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case string:
			for _, s := range secrets {
				if s.In([]byte(v)) {
					n++
					return Redacted
				}
			}
		}
		return v
	}
	doc = walk(doc)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, 0, err
	}
	for _, s := range secrets {
		if s.In(out) {
			return nil, 0, fmt.Errorf("bib manifest: a secret is still there after scrubbing (in a key, not a value)")
		}
	}
	return append(out, '\n'), n, nil
}
