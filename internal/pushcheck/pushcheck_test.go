package pushcheck

import (
	"context"
	"strings"
	"testing"

	"dagger/kafka-bootc/internal/containertest"
	"dagger/kafka-bootc/nodes"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// TestPushIsAskedOfTheRealRegistry: distribution's registry with one user
// answers the push check: the user's login may push to every repository;
// no login, and a wrong password, are refused for each repository, each
// named with the registry's answer.
func TestPushIsAskedOfTheRealRegistry(t *testing.T) {
	addr := containertest.AuthRegistry(t, "pusher", "secret")
	repos := []string{addr + "/me/kafka-broker-1", addr + "/me/kafka-controller-1"}
	ctx := context.Background()
	if err := Check(ctx, repos, []nodes.Login{{Registry: addr, Username: "pusher", Password: "secret"}}, nil); err != nil {
		t.Errorf("with the login: %v", err)
	}
	for name, logins := range map[string][]nodes.Login{
		"no login":         nil,
		"a wrong password": {{Registry: addr, Username: "pusher", Password: "wrong"}},
		"another host's":   {{Registry: "quay.io", Username: "pusher", Password: "secret"}},
	} {
		err := Check(ctx, repos, logins, nil)
		if err == nil {
			t.Errorf("%s: allowed", name)
			continue
		}
		for _, repo := range repos {
			if !strings.Contains(err.Error(), "pushing to "+repo+": the registry refuses: ") || !strings.Contains(err.Error(), "UNAUTHORIZED") {
				t.Errorf("%s: %v, want each repository named with the registry's answer", name, err)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the password in the error: %v", name, err)
		}
	}
	// docker.io's logins are index.docker.io's.
	if auth, _ := keychain([]nodes.Login{{Registry: "docker.io", Username: "me", Password: "p"}}).Resolve(mustRepo(t, "docker.io/me/kafka-broker-1")); auth == nil || auth == authn.Anonymous {
		t.Error("a docker.io login does not serve docker.io's repositories")
	}
	if err := Check(ctx, []string{"Not A Repository"}, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "pushing to Not A Repository: ") {
		t.Errorf("a bad repository: %v", err)
	}
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
