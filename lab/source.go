package lab

// CommandSource lists the files of this module that the build of
// kafka-bootc-lab (./cmd/kafka-bootc-lab) needs, as Dagger's include
// patterns: the Go files and modules, and the files that packages embed
// (the cluster model embeds its example file and schema). The lab
// function copies exactly these into its build, and
// TestTheLabCommandBuildsFromExactlyTheFilesTheLabCopies builds from them.
var CommandSource = []string{
	"go.mod",
	"go.sum",
	"**/*.go",
	"nodes/kafka-cluster.yaml",
	"nodes/kafka-cluster.schema.json",
}
