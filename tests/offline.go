//go:build dagger_offline

// This file stands in for the dagger.gen.go that the engine generates; it
// is compiled only with the dagger_offline build tag.

package main

import (
	"fmt"
	"os"

	"dagger/tests/internal/dagger"
)

// dag is the engine client; offline there is none.
var dag = dagger.Connect()

func main() {
	fmt.Fprintln(os.Stderr, "tests is a Dagger module: run it with dagger call -m tests all")
	os.Exit(2)
}
