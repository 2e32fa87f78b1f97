//go:build dagger_offline

// Package dagger stands in for the package that Dagger generates here when
// a user runs "dagger call -m tests": the core API as aliases of the Go
// SDK's types, and the binding of the kafka-bootc dependency written the
// way the generator writes it (GraphQL selections with the SDK's
// querybuilder). It exists only under the dagger_offline build tag, so the
// module compiles and vets without an engine; the engine never sees it.
package dagger

import (
	"context"

	sdk "dagger.io/dagger"
	"github.com/dagger/querybuilder"

	// The packages that the generated code imports besides the SDK, so
	// that the offline build compiles the dependency graph the engine
	// compiles (see the kafka-bootc module's dagger_pins_test.go).
	_ "github.com/dagger/otel-go"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/propagation"
	_ "go.opentelemetry.io/otel/trace"
)

// ReturnTypeAny lets an exec fail, so that its exit code can be read.
const ReturnTypeAny = sdk.ReturnTypeAny

type (
	Container              = sdk.Container
	Directory              = sdk.Directory
	File                   = sdk.File
	Secret                 = sdk.Secret
	Service                = sdk.Service
	CacheVolume            = sdk.CacheVolume
	ContainerFromOpts      = sdk.ContainerFromOpts
	ContainerAsServiceOpts = sdk.ContainerAsServiceOpts
	ContainerPublishOpts   = sdk.ContainerPublishOpts
	ServiceEndpointOpts    = sdk.ServiceEndpointOpts
	ContainerWithExecOpts  = sdk.ContainerWithExecOpts
)

// Client is the engine client with the dependency's constructor.
type Client struct{ *sdk.Client }

// Connect returns no client: offline there is no engine.
func Connect() *Client { return nil }

// KafkaBootc is the kafka-bootc module object.
type KafkaBootc struct{ query *querybuilder.Selection }

// KafkaBootcOpts are the optional arguments of kafka-bootc's constructor
// that the tests use.
type KafkaBootcOpts struct {
	Cluster          *File
	Registry         string
	Tag              string
	JmxExporterJar   *File
	SigningPublicKey *File
}

// KafkaBootc constructs the module object.
func (c *Client) KafkaBootc(opts ...KafkaBootcOpts) *KafkaBootc {
	q := c.QueryBuilder().Select("kafkaBootc")
	for i := len(opts) - 1; i >= 0; i-- {
		if !querybuilder.IsZeroValue(opts[i].Cluster) {
			q = q.Arg("cluster", opts[i].Cluster)
		}
		if !querybuilder.IsZeroValue(opts[i].Registry) {
			q = q.Arg("registry", opts[i].Registry)
		}
		if !querybuilder.IsZeroValue(opts[i].Tag) {
			q = q.Arg("tag", opts[i].Tag)
		}
		if !querybuilder.IsZeroValue(opts[i].JmxExporterJar) {
			q = q.Arg("jmxExporterJar", opts[i].JmxExporterJar)
		}
		if !querybuilder.IsZeroValue(opts[i].SigningPublicKey) {
			q = q.Arg("signingPublicKey", opts[i].SigningPublicKey)
		}
	}
	return &KafkaBootc{query: q}
}

// WithRegistryAuth is kafka-bootc's with-registry-auth function.
func (r *KafkaBootc) WithRegistryAuth(address, username string, secret *Secret) *KafkaBootc {
	q := r.query.Select("withRegistryAuth")
	q = q.Arg("address", address)
	q = q.Arg("username", username)
	q = q.Arg("secret", secret)
	return &KafkaBootc{query: q}
}

// Config is kafka-bootc's config function.
func (r *KafkaBootc) Config() *Directory {
	return (&sdk.Directory{}).WithGraphQLQuery(r.query.Select("config"))
}

// KafkaBootcBuildAllOpts are build-all's optional arguments.
type KafkaBootcBuildAllOpts struct {
	RegistryService  *Service
	SigningKey       *Secret
	SigningPassword  *Secret
	TrustedPublicKey *File
	Format           string
	CosignImage      string
	SyftImage        string
	ToolsFromSource  bool
}

// BuildAll is kafka-bootc's build-all function.
func (r *KafkaBootc) BuildAll(ctx context.Context, opts ...KafkaBootcBuildAllOpts) (string, error) {
	q := r.query.Select("buildAll")
	for i := len(opts) - 1; i >= 0; i-- {
		if !querybuilder.IsZeroValue(opts[i].RegistryService) {
			q = q.Arg("registryService", opts[i].RegistryService)
		}
		if !querybuilder.IsZeroValue(opts[i].SigningKey) {
			q = q.Arg("signingKey", opts[i].SigningKey)
		}
		if !querybuilder.IsZeroValue(opts[i].SigningPassword) {
			q = q.Arg("signingPassword", opts[i].SigningPassword)
		}
		if !querybuilder.IsZeroValue(opts[i].TrustedPublicKey) {
			q = q.Arg("trustedPublicKey", opts[i].TrustedPublicKey)
		}
		if !querybuilder.IsZeroValue(opts[i].Format) {
			q = q.Arg("format", opts[i].Format)
		}
		if !querybuilder.IsZeroValue(opts[i].CosignImage) {
			q = q.Arg("cosignImage", opts[i].CosignImage)
		}
		if !querybuilder.IsZeroValue(opts[i].SyftImage) {
			q = q.Arg("syftImage", opts[i].SyftImage)
		}
		if !querybuilder.IsZeroValue(opts[i].ToolsFromSource) {
			q = q.Arg("toolsFromSource", opts[i].ToolsFromSource)
		}
	}
	var response string
	q = q.Bind(&response)
	return response, q.Execute(ctx)
}

// Ca is kafka-bootc's ca function.
func (r *KafkaBootc) Ca() *Directory {
	return (&sdk.Directory{}).WithGraphQLQuery(r.query.Select("ca"))
}

// KafkaBootcDiskOpts are disk's optional arguments.
type KafkaBootcDiskOpts struct {
	Image    string
	Password *Secret
	CaCert   *File
	CaKey    *Secret
}

// Disk is kafka-bootc's disk function.
func (r *KafkaBootc) Disk(node string, opts ...KafkaBootcDiskOpts) *Directory {
	q := r.query.Select("disk")
	for i := len(opts) - 1; i >= 0; i-- {
		if !querybuilder.IsZeroValue(opts[i].Image) {
			q = q.Arg("image", opts[i].Image)
		}
		if !querybuilder.IsZeroValue(opts[i].Password) {
			q = q.Arg("password", opts[i].Password)
		}
		if !querybuilder.IsZeroValue(opts[i].CaCert) {
			q = q.Arg("caCert", opts[i].CaCert)
		}
		if !querybuilder.IsZeroValue(opts[i].CaKey) {
			q = q.Arg("caKey", opts[i].CaKey)
		}
	}
	q = q.Arg("node", node)
	return (&sdk.Directory{}).WithGraphQLQuery(q)
}

// KafkaBootcRunningOpts are running's optional arguments that the tests use.
type KafkaBootcRunningOpts struct {
	KnownHosts *File
	Address    []string
	Published  string
}

// KafkaBootcRunning is kafka-bootc's running cluster.
type KafkaBootcRunning struct{ query *querybuilder.Selection }

// Running is kafka-bootc's running function.
func (r *KafkaBootc) Running(identity *Secret, opts ...KafkaBootcRunningOpts) *KafkaBootcRunning {
	q := r.query.Select("running")
	for i := len(opts) - 1; i >= 0; i-- {
		if !querybuilder.IsZeroValue(opts[i].KnownHosts) {
			q = q.Arg("knownHosts", opts[i].KnownHosts)
		}
		if !querybuilder.IsZeroValue(opts[i].Address) {
			q = q.Arg("address", opts[i].Address)
		}
		if !querybuilder.IsZeroValue(opts[i].Published) {
			q = q.Arg("published", opts[i].Published)
		}
	}
	q = q.Arg("identity", identity)
	return &KafkaBootcRunning{query: q}
}

// Health is the running cluster's health function.
func (r *KafkaBootcRunning) Health(ctx context.Context) (string, error) {
	q := r.query.Select("health")
	var response string
	q = q.Bind(&response)
	return response, q.Execute(ctx)
}

// KafkaBootcRunningRolloutOpts are rollout's optional arguments that the
// tests use.
type KafkaBootcRunningRolloutOpts struct {
	Timeout int
}

// Rollout is the running cluster's rollout function.
func (r *KafkaBootcRunning) Rollout(ctx context.Context, opts ...KafkaBootcRunningRolloutOpts) (string, error) {
	q := r.query.Select("rollout")
	for i := len(opts) - 1; i >= 0; i-- {
		if !querybuilder.IsZeroValue(opts[i].Timeout) {
			q = q.Arg("timeout", opts[i].Timeout)
		}
	}
	var response string
	q = q.Bind(&response)
	return response, q.Execute(ctx)
}

// KafkaBootcLabOpts are lab's optional arguments that the tests use.
type KafkaBootcLabOpts struct {
	KnownHosts *File
	Memory     int
	Cpus       int
	Accel      string
	Image      string
}

// KafkaBootcLab is kafka-bootc's lab.
type KafkaBootcLab struct{ query *querybuilder.Selection }

// Lab is kafka-bootc's lab function.
func (r *KafkaBootc) Lab(disks *Directory, identity *Secret, opts ...KafkaBootcLabOpts) *KafkaBootcLab {
	q := r.query.Select("lab")
	for i := len(opts) - 1; i >= 0; i-- {
		if !querybuilder.IsZeroValue(opts[i].KnownHosts) {
			q = q.Arg("knownHosts", opts[i].KnownHosts)
		}
		if !querybuilder.IsZeroValue(opts[i].Memory) {
			q = q.Arg("memory", opts[i].Memory)
		}
		if !querybuilder.IsZeroValue(opts[i].Cpus) {
			q = q.Arg("cpus", opts[i].Cpus)
		}
		if !querybuilder.IsZeroValue(opts[i].Accel) {
			q = q.Arg("accel", opts[i].Accel)
		}
		if !querybuilder.IsZeroValue(opts[i].Image) {
			q = q.Arg("image", opts[i].Image)
		}
	}
	q = q.Arg("disks", disks)
	q = q.Arg("identity", identity)
	return &KafkaBootcLab{query: q}
}

// KafkaBootcLabSmokeOpts are smoke's optional arguments that the tests
// use.
type KafkaBootcLabSmokeOpts struct {
	BootTimeout int
}

// Smoke is the lab's smoke function.
func (r *KafkaBootcLab) Smoke(ctx context.Context, opts ...KafkaBootcLabSmokeOpts) (string, error) {
	q := r.query.Select("smoke")
	for i := len(opts) - 1; i >= 0; i-- {
		if !querybuilder.IsZeroValue(opts[i].BootTimeout) {
			q = q.Arg("bootTimeout", opts[i].BootTimeout)
		}
	}
	var response string
	q = q.Bind(&response)
	return response, q.Execute(ctx)
}

// Service is the lab's service function.
func (r *KafkaBootcLab) Service() *Service {
	q := r.query.Select("service")
	return (&sdk.Service{}).WithGraphQLQuery(q)
}
