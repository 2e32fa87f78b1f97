package nodes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// CheckBoundImage reports whether ref can be a logically bound image: bootc
// reads it as written, so it must be fully qualified (registry included) and
// pinned by a tag other than latest or by a digest.
func CheckBoundImage(ref string) error {
	named, err := parseQualified(ref)
	if err != nil {
		return err
	}
	_, tagged := named.(reference.Tagged)
	_, digested := named.(reference.Digested)
	switch {
	case !tagged && !digested:
		return fmt.Errorf("%q: must be pinned by a tag or a digest (@sha256:...)", ref)
	case tagged && named.(reference.Tagged).Tag() == "latest" && !digested:
		return fmt.Errorf("%q: must be pinned by a tag other than latest, or by a digest", ref)
	}
	return nil
}

// CheckBaseImage reports whether ref names a bootc base image that a build
// can start from unambiguously: a fully qualified reference.
func CheckBaseImage(ref string) error {
	_, err := parseQualified(ref)
	return err
}

func parseQualified(ref string) (reference.Named, error) {
	if ref == "" {
		return nil, errors.New("an image reference is required")
	}
	if strings.Contains(ref, "%") {
		return nil, fmt.Errorf("%q: must not hold systemd %% specifiers", ref)
	}
	parsed, err := reference.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%q: not an image reference: %w", ref, err)
	}
	named, ok := parsed.(reference.Named)
	if !ok {
		return nil, fmt.Errorf("%q: must name a repository, not only a digest", ref)
	}
	if d := reference.Domain(named); d != "localhost" && !strings.ContainsAny(d, ".:") {
		return nil, fmt.Errorf("%q: must be fully qualified with its registry, for example docker.io/%s", ref, ref)
	}
	return named, nil
}
