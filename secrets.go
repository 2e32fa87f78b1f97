// Private files and secrets: how keys reach a directory or a container
// without showing in Dagger's logs.

package main

import (
	"crypto/sha256"
	"fmt"

	"dagger/kafka-bootc/internal/dagger"
	"dagger/kafka-bootc/nodes"
)

// keyImage copies private files into a directory. A file made with
// withNewFile shows its contents in Dagger's progress output and traces;
// one copied from a mounted secret shows only the secret's name.
const keyImage = "docker.io/library/debian:bookworm"

// withFiles adds files to a directory, the private ones by way of a secret.
func (m *KafkaBootc) withFiles(dir *dagger.Directory, files []nodes.File) *dagger.Directory {
	for _, f := range files {
		opts := dagger.DirectoryWithNewFileOpts{Permissions: int(f.Mode.Perm())}
		if !f.Private {
			dir = dir.WithNewFile(f.Path, string(f.Content), opts)
			continue
		}
		copied := m.pull(keyImage).
			WithMountedSecret("/private", secretOf("kafka-bootc-private", f.Content)).
			WithExec([]string{"cp", "/private", "/copy"}).
			File("/copy")
		dir = dir.WithFile(f.Path, copied, dagger.DirectoryWithFileOpts{Permissions: int(f.Mode.Perm())})
	}
	return dir
}

// secretOf makes a secret of contents, named by prefix and the contents'
// digest: a session may make several from one place (a disk per node, a
// key per client), and Dagger tells secrets apart by name.
func secretOf(prefix string, contents []byte) *dagger.Secret {
	sum := sha256.Sum256(contents)
	return dag.SetSecret(fmt.Sprintf("%s-%x", prefix, sum[:8]), string(contents))
}
