// The check of a registry that requires a login.

package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/tests/internal/dagger"
)

// PrivateRegistry publishes to a registry that requires a login
// (registry:2.8.3 with htpasswd): build-all without a login fails with one
// error that names the registry and says it needs credentials; with
// with-registry-auth it publishes, and every image pulls back with the
// login.
// +cache="never"
func (m *Tests) PrivateRegistry(ctx context.Context) error {
	password := "e2e-" + nonce()
	htpasswd, err := dag.Container().From(toolsImage).
		WithExec([]string{"sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null"}).
		WithSecretVariable("PASSWORD", dag.SetSecret("e2e-registry-password-"+password, password)).
		WithExec([]string{"sh", "-c", `htpasswd -Bbn e2e "$PASSWORD" > /htpasswd`}).
		File("/htpasswd").Sync(ctx)
	if err != nil {
		return err
	}
	svc := dag.Container().From(registryImage).
		WithMountedCache("/var/lib/registry", dag.CacheVolume("kafka-bootc-e2e-private-"+nonce())).
		WithFile("/auth/htpasswd", htpasswd).
		WithEnvVariable("REGISTRY_AUTH", "htpasswd").
		WithEnvVariable("REGISTRY_AUTH_HTPASSWD_REALM", "kafka-bootc-e2e").
		WithEnvVariable("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd").
		WithExposedPort(5000).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"registry", "serve", "/etc/docker/registry/config.yml"}})
	kb := cluster("private", clusterOpts{})
	_, err = kb.BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: svc})
	if err == nil || !strings.Contains(err.Error(), "the registry "+registryHost+" refused access: it needs credentials") {
		return fmt.Errorf("build-all without a login: %v", err)
	}
	secret := dag.SetSecret("e2e-registry-login-"+password, password)
	out, err := kb.WithRegistryAuth(registryHost, "e2e", secret).BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: svc})
	if err != nil {
		return fmt.Errorf("build-all with a login: %w", err)
	}
	refs, err := publishedRefs(out)
	if err != nil {
		return err
	}
	for name, ref := range refs {
		if _, err := dag.Container().WithRegistryAuth(registryHost, "e2e", secret).
			From(ref, dagger.ContainerFromOpts{RegistryService: svc}).Sync(ctx); err != nil {
			return fmt.Errorf("%s: %s does not pull back with the login: %w", name, ref, err)
		}
	}
	return nil
}

// Preflight runs build-all with a Kafka tag that the registry does not
// have: it fails before building anything, with an error that names the
// tag, and the registry receives no image.
// +cache="never"
func (m *Tests) Preflight(ctx context.Context) error {
	reg := newRegistry("kafka-bootc-e2e-preflight-" + nonce())
	const missing = "docker.io/apache/kafka:4.4.99"
	_, err := cluster("preflight", clusterOpts{kafkaImage: missing}).BuildAll(ctx, dagger.KafkaBootcBuildAllOpts{RegistryService: reg.svc})
	if err == nil || !strings.Contains(err.Error(), missing) {
		return fmt.Errorf("build-all with a missing Kafka tag: %v, want an error naming %s", err, missing)
	}
	repos, err := reg.run(ctx, "list repositories", "ls /var/lib/registry/docker/registry/v2/repositories/preflight 2>/dev/null || true")
	if err != nil {
		return err
	}
	if strings.TrimSpace(repos) != "" {
		return fmt.Errorf("build-all published before the pre-flight failed: %s", repos)
	}
	return nil
}
