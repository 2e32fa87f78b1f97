package shell

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAShellReadsEveryWordAsItIs: the words come back from sh unchanged.
func TestAShellReadsEveryWordAsItIs(t *testing.T) {
	words := []string{"plain", "a b", "it's", "$HOME", "*", "", "--flag=x:y", "semi;colon", "back\\slash", "new\nline", "%{x}", "`cmd`"}
	out, err := exec.Command("sh", "-c", "printf '%s|' "+Join(words)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(words, "|") + "|"; string(out) != want {
		t.Errorf("sh read %q, want %q", out, want)
	}
	if Quote("quay.io/me/kafka-broker-1:latest") != "quay.io/me/kafka-broker-1:latest" || Quote("a b") != "'a b'" {
		t.Error("a safe word is quoted, or an unsafe one is not")
	}
}
