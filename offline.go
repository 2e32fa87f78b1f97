//go:build dagger_offline

// This file stands in for the dagger.gen.go that the engine generates; it
// is compiled only with the dagger_offline build tag (see
// internal/dagger/offline.go).

package main

import (
	"fmt"
	"os"

	"dagger/kafka-bootc/internal/dagger"
)

// dag is the engine client; offline it is nil until a test connects.
var dag = dagger.Connect()

func main() {
	fmt.Fprintln(os.Stderr, "kafka-bootc is a Dagger module: run it with dagger call (this is an offline build for checks)")
	os.Exit(2)
}
