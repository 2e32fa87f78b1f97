package realkafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer writes records to a topic without pause, each waiting for its
// acknowledgement (acks=all, idempotent, as franz-go produces by default),
// and keeps what was acknowledged: the records that must never be lost.
type Producer struct {
	client *kgo.Client
	topic  string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acked   []string
	failed  int
	last    time.Time
	longest time.Duration
	started time.Time
}

// Produce starts writing to topic with client, which the Producer closes.
func Produce(client *kgo.Client, topic string) *Producer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{client: client, topic: topic, cancel: cancel, done: make(chan struct{}), started: time.Now(), last: time.Now()}
	go p.run(ctx)
	return p
}

func (p *Producer) run(ctx context.Context) {
	defer close(p.done)
	for i := 0; ctx.Err() == nil; i++ {
		v := fmt.Sprintf("%s-%06d", p.topic, i)
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := p.client.ProduceSync(actx, &kgo.Record{Topic: p.topic, Value: []byte(v)}).FirstErr()
		cancel()
		now := time.Now()
		p.mu.Lock()
		if err == nil {
			p.acked = append(p.acked, v)
			if gap := now.Sub(p.last); gap > p.longest {
				p.longest = gap
			}
			p.last = now
		} else if ctx.Err() == nil {
			p.failed++
		}
		p.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop stops writing and returns the acknowledged records and the longest
// stretch in which none was acknowledged.
func (p *Producer) Stop() (acked []string, failed int, longestStall time.Duration) {
	p.cancel()
	<-p.done
	p.client.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if gap := time.Since(p.last); gap > p.longest {
		p.longest = gap
	}
	return p.acked, p.failed, p.longest
}

// ReadAll reads topic from its start with client until every one of want
// was read, or ctx ends; it returns the ones it did not read.
func ReadAll(ctx context.Context, client *kgo.Client, topic string, want []string) []string {
	missing := make(map[string]bool, len(want))
	for _, w := range want {
		missing[w] = true
	}
	client.AddConsumeTopics(topic)
	for len(missing) > 0 && ctx.Err() == nil {
		client.PollFetches(ctx).EachRecord(func(r *kgo.Record) { delete(missing, string(r.Value)) })
	}
	var out []string
	for _, w := range want {
		if missing[w] {
			out = append(out, w)
		}
	}
	return out
}
