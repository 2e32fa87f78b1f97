package realkafka

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"dagger/kafka-bootc/nodes"
)

// Require skips the test where the real Kafka cannot run here, saying
// why. Under CI=true it fails instead: a CI run that skipped the real
// Kafka proved nothing about it.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("skipped in -short: runs the real Kafka")
	}
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the real-Kafka tests cannot run in CI: %v", err)
		}
		t.Skipf("skipped: %v", err)
	}
}

// FormTimeout bounds a cluster's start, to every broker live: on 2 cores
// a 3+3 cluster takes about 30 seconds.
const FormTimeout = 4 * time.Minute

var shared = struct {
	sync.Mutex
	clusters map[string]*sharedCluster
}{clusters: map[string]*sharedCluster{}}

type sharedCluster struct {
	once sync.Once
	cl   *Cluster
	err  error
}

// Shared is the cluster of the given name, started by the first test that
// asks for it and shared by the package's tests, which must leave it as
// they found it (a topic of their own is fine). CloseShared, from the
// package's TestMain, stops it.
func Shared(t testing.TB, name string, spec nodes.Spec) *Cluster {
	t.Helper()
	Require(t)
	shared.Lock()
	sc, ok := shared.clusters[name]
	if !ok {
		sc = &sharedCluster{}
		shared.clusters[name] = sc
	}
	shared.Unlock()
	sc.once.Do(func() {
		c, err := nodes.Plan(spec)
		if err != nil {
			sc.err = err
			return
		}
		sc.cl, sc.err = Start(c, Options{})
		if sc.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), FormTimeout)
		defer cancel()
		if sc.err = sc.cl.Wait(ctx); sc.err != nil {
			sc.cl.Close()
		}
	})
	if sc.err != nil {
		t.Fatalf("cluster %s: %v", name, sc.err)
	}
	return sc.cl
}

// Own is a cluster of the test's own, started and formed now and stopped
// when the test ends: for a cluster that one test alone needs.
func Own(t testing.TB, spec nodes.Spec) *Cluster {
	t.Helper()
	Require(t)
	c, err := nodes.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Start(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), FormTimeout)
	defer cancel()
	if err := cl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return cl
}

// CloseShared stops every shared cluster.
func CloseShared() {
	shared.Lock()
	defer shared.Unlock()
	for name, sc := range shared.clusters {
		if sc.cl != nil && sc.err == nil {
			sc.cl.Close()
		}
		delete(shared.clusters, name)
	}
}

// Main runs a package's tests and stops its shared clusters after them.
// It is also the nodes' shell: sshd runs the test binary for every command
// sent to a node (see Machines), and Main hands the command to the harness.
func Main(m *testing.M) {
	if os.Getenv(nodeShellSocket) != "" {
		os.Exit(nodeShell())
	}
	code := m.Run()
	CloseShared()
	os.Exit(code)
}
