package pushcheck

import (
	"context"
	"net"
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
	if unasked, err := Check(ctx, repos, []nodes.Login{{Registry: addr, Username: "pusher", Password: "secret"}}, nil); err != nil || len(unasked) > 0 {
		t.Errorf("with the login: %v, %q", err, unasked)
	}
	for name, logins := range map[string][]nodes.Login{
		"no login":         nil,
		"a wrong password": {{Registry: addr, Username: "pusher", Password: "wrong"}},
		"another host's":   {{Registry: "quay.io", Username: "pusher", Password: "secret"}},
	} {
		_, err := Check(ctx, repos, logins, nil)
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
	if _, err := Check(ctx, []string{"Not A Repository"}, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "pushing to Not A Repository: ") {
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

// TestARegistryThatCannotBeAskedIsNoRefusal: a registry that the check
// cannot reach (nothing listens on its port, or its name does not
// resolve) is not a refusal: the engine, which makes the pushes, may reach
// it. The check says so in one line per registry and returns no error.
func TestARegistryThatCannotBeAskedIsNoRefusal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	repos := []string{closed + "/me/kafka-broker-1", closed + "/me/kafka-controller-1", "registry.invalid/me/kafka-broker-1"}
	unasked, err := Check(context.Background(), repos, []nodes.Login{{Registry: closed, Username: "pusher", Password: "secret"}}, nil)
	if err != nil {
		t.Errorf("a registry that cannot be asked refused the build: %v", err)
	}
	if len(unasked) != 2 {
		t.Fatalf("want one line for each of the two registries, got %q", unasked)
	}
	joined := strings.Join(unasked, "\n")
	for _, want := range []string{"registry " + closed + ": push permission not checked", "connection refused", "registry registry.invalid: push permission not checked", "the publish, made by the Dagger engine, goes on"} {
		if !strings.Contains(joined, want) {
			t.Errorf("lines %q lack %q", unasked, want)
		}
	}
	if strings.Contains(joined, "secret") {
		t.Errorf("the password in the lines: %q", unasked)
	}
}
