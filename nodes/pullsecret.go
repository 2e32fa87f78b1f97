package nodes

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"dagger/kafka-bootc/bib"
)

// PullSecretPath is where a node keeps its registry credentials: bootc
// reads /etc/ostree/auth.json for the node's own image (bootc's docs,
// "Private registries"), and pulls the bound images with podman
// --authfile set to the same file (bootc's podstorage.rs, pull). /etc is
// the node's own, kept across upgrades, and in no image.
const PullSecretPath = "/etc/ostree/auth.json"

// pullSecret is the part of containers-auth.json(5) that a pull secret
// uses: credentials by registry, namespace or repository.
type pullSecret struct {
	Auths map[string]pullAuth `json:"auths"`
}

type pullAuth struct {
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// CheckPullSecret reads a pull secret in containers-auth.json(5) format and
// checks that it holds credentials for every node image's repository, as
// podman and bootc look them up: the most specific key among
// registry/namespace/repository, registry/namespace and registry. It
// returns the credentials' values, which must appear in no output. Errors
// name the rule and a repository, never a credential.
func (c *Cluster) CheckPullSecret(data []byte) (values []string, err error) {
	if c.Registry == "" {
		return nil, errors.New("pull secret: given for a cluster without a registry; the nodes pull from nowhere")
	}
	var ps pullSecret
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&ps); err != nil {
		return nil, errors.New("pull secret: not a containers-auth.json file ({\"auths\": {\"quay.io\": {\"auth\": \"...\"}}}), as podman login --authfile writes it")
	}
	if len(ps.Auths) == 0 {
		return nil, errors.New("pull secret: holds no credentials (its \"auths\" is empty)")
	}
	for key, a := range ps.Auths {
		switch {
		case a.IdentityToken != "":
			values = append(values, a.IdentityToken)
		case a.Auth == "":
			return nil, fmt.Errorf("pull secret: the entry %q has no \"auth\"", key)
		default:
			decoded, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil || !strings.Contains(string(decoded), ":") {
				return nil, fmt.Errorf("pull secret: the \"auth\" of %q is not base64 of user:password", key)
			}
		}
		if a.Auth != "" {
			values = append(values, a.Auth)
		}
	}
	for _, n := range c.Nodes {
		repo, _, _ := strings.Cut(c.Ref(n), ":"+c.Tag)
		if _, ok := lookupAuth(ps.Auths, repo); !ok {
			return nil, fmt.Errorf("pull secret: holds no credentials for %s, which %s upgrades from (keys are a registry, registry/namespace or registry/namespace/repository)", repo, n.Name)
		}
	}
	return values, nil
}

// lookupAuth finds the credentials for a repository as containers/image
// does: the key that is the repository, then each shorter namespace, then
// the registry alone.
func lookupAuth(auths map[string]pullAuth, repo string) (pullAuth, bool) {
	for key := repo; ; {
		if a, ok := auths[key]; ok {
			return a, true
		}
		i := strings.LastIndex(key, "/")
		if i < 0 {
			return pullAuth{}, false
		}
		key = key[:i]
	}
}

// PullSecretFiles are the files that bootc-image-builder writes on a
// node's disk for its pull secret: the file, readable by root alone, and
// its directory, which the base image has already (a directory without a
// mode or owner is left as it is).
func PullSecretFiles(data []byte) ([]bib.Directory, []bib.File) {
	return []bib.Directory{{Path: "/etc/ostree", EnsureParents: true}},
		[]bib.File{{Path: PullSecretPath, Mode: "0600", User: "root", Group: "root", Data: string(data)}}
}
