//go:build dagger_offline

// Package dagger stands in for the package that Dagger generates here
// (dagger.gen.go) when a user runs "dagger call". It exists only under the
// dagger_offline build tag, so that main.go compiles, vets and runs its
// tests on machines without an engine; the engine never sees it.
//
// Every name is an alias of the Go SDK's own type, so main.go is checked
// against the real API of the engine version in dagger.json.
package dagger

import (
	sdk "dagger.io/dagger"

	// The packages that the generated dagger.gen.go files import besides
	// the SDK, so that the offline build compiles the dependency graph the
	// engine compiles (TestTheOfflineStandInImportsWhatTheEngineGenerates).
	_ "github.com/dagger/otel-go"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/propagation"
	_ "go.opentelemetry.io/otel/trace"
)

type (
	Client                        = sdk.Client
	Container                     = sdk.Container
	Directory                     = sdk.Directory
	File                          = sdk.File
	Secret                        = sdk.Secret
	CacheVolume                   = sdk.CacheVolume
	Service                       = sdk.Service
	CacheSharingMode              = sdk.CacheSharingMode
	ContainerWithExecOpts         = sdk.ContainerWithExecOpts
	ContainerWithNewFileOpts      = sdk.ContainerWithNewFileOpts
	ContainerWithMountedCacheOpts = sdk.ContainerWithMountedCacheOpts
	ContainerPublishOpts          = sdk.ContainerPublishOpts
	ContainerWithFileOpts         = sdk.ContainerWithFileOpts
	ContainerWithDirectoryOpts    = sdk.ContainerWithDirectoryOpts
	ContainerFromOpts             = sdk.ContainerFromOpts
	ContainerAsServiceOpts        = sdk.ContainerAsServiceOpts
	HTTPOpts                      = sdk.HTTPOpts
	DirectoryWithNewFileOpts      = sdk.DirectoryWithNewFileOpts
	DirectoryWithFileOpts         = sdk.DirectoryWithFileOpts
)

const (
	CacheSharingModeLocked = sdk.CacheSharingModeLocked
	ReturnTypeAny          = sdk.ReturnTypeAny
)

// Connect returns no client: offline there is no engine. Tests that need
// one connect through the SDK when a Dagger session is reachable.
func Connect() *Client { return nil }
