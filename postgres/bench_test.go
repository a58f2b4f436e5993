package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/postgres"
)

// BenchmarkAppendMessages measures durable commits of batches of webhook
// messages (token checked in the batch, as the webhook path does); ns/op
// is per message. nodes=N runs N stores on one database appending at once,
// as N carillon nodes would: their batches take turns on the counter row.
func BenchmarkAppendMessages(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, size := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("nodes=%d/batch=%d", nodes, size), func(b *testing.B) {
				dsn := freshDatabase(b)
				stores := make([]*postgres.DB, nodes)
				for i := range stores {
					stores[i] = openDSN(b, dsn)
				}
				w := newWorld(b, stores[0])
				ctx := context.Background()
				b.ResetTimer()
				errs := make(chan error, nodes)
				for _, s := range stores {
					go func() {
						for i := 0; i < b.N/nodes; i += size {
							batch := make([]*carillon.Append, size)
							for j := range batch {
								batch[j] = w.hookEntry(w.hook.TokenHash, "hello", time.Now())
							}
							if err := s.AppendMessages(ctx, batch); err != nil {
								errs <- err
								return
							}
						}
						errs <- nil
					}()
				}
				for range stores {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
