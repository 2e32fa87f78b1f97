package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"dagger/kafka-bootc/bib"
	"dagger/kafka-bootc/internal/dagger"
)

// The handoff registry carries the node images and the base to the
// builder. It runs as a Dagger service on a cache volume: a node's
// builder pulls only the layers its storage lacks, the base's gigabytes
// are written once, and an image archive, written whole for each node,
// would write them once per node.
const (
	handoffImage = "docker.io/library/registry:2.8.3"
	// handoffPush is where images are published to it: Dagger speaks
	// plain HTTP to localhost alone.
	handoffPush = "localhost:5000/kafka-bootc/"
	// handoffHost is its name in the builder's containers.
	handoffHost = "kafka-bootc-handoff"
)

// handoff publishes images to the handoff registry, each repository once
// per call.
type handoff struct {
	svc    *dagger.Service
	mu     sync.Mutex
	pushes map[string]*handoffPut
}

type handoffPut struct {
	once sync.Once
	ref  string
	err  error
}

func (m *KafkaBootc) newHandoff() *handoff {
	svc := m.pull(handoffImage).
		WithMountedCache("/var/lib/registry", dag.CacheVolume("kafka-bootc-handoff")).
		WithExposedPort(5000).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"registry", "serve", "/etc/docker/registry/config.yml"}})
	return &handoff{svc: svc, pushes: map[string]*handoffPut{}}
}

// put publishes an image to the handoff registry, once per repository
// (later callers wait for the first), and returns the reference by digest
// that the builder pulls.
func (h *handoff) put(ctx context.Context, repo string, ctr *dagger.Container) (string, error) {
	h.mu.Lock()
	p := h.pushes[repo]
	if p == nil {
		p = &handoffPut{}
		h.pushes[repo] = p
	}
	h.mu.Unlock()
	p.once.Do(func() {
		ref, err := ctr.Publish(ctx, handoffPush+repo+":latest", dagger.ContainerPublishOpts{RegistryService: h.svc})
		if err != nil {
			p.err = fmt.Errorf("handing %s to the builder: %w", repo, err)
			return
		}
		_, digest, ok := strings.Cut(ref, "@")
		if !ok {
			p.err = fmt.Errorf("handing %s to the builder: %q has no digest", repo, ref)
			return
		}
		p.ref = handoffHost + ":5000/kafka-bootc/" + repo + "@" + digest
	})
	return p.ref, p.err
}

// bind gives a builder container the handoff registry when one of the
// images comes from it.
func (h *handoff) bind(ctr *dagger.Container, images ...bib.Image) *dagger.Container {
	for _, img := range images {
		if img.PlainHTTP {
			return ctr.WithServiceBinding(handoffHost, h.svc)
		}
	}
	return ctr
}
