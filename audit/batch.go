package audit

import (
	"context"
	"sync"
	"time"

	"github.com/latchhq/latch/storage"
)

// maxBatch bounds one multi-row insert.
const maxBatch = 256

// groupCommit writes audit rows the way a database commits a log: a request
// waits until its row is stored (nothing is lost, unlike an asynchronous
// queue), but rows that arrive while one insert is in flight go out together
// in the next. Under load that turns one insert per state change into one
// per batch; alone, a row is written at once with no added delay.
type groupCommit struct {
	insert func(ctx context.Context, rows []*storage.AuditEvent) error
	// timeout bounds one insert: an insert still running later could
	// commit an id below events the export cursor has already served.
	timeout time.Duration

	mu      sync.Mutex
	queue   []pendingRow
	running bool
}

type pendingRow struct {
	row  *storage.AuditEvent
	done chan error
}

func (g *groupCommit) write(row *storage.AuditEvent) error {
	p := pendingRow{row: row, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	if !g.running {
		g.running = true
		go g.flush()
	}
	g.mu.Unlock()
	return <-p.done
}

// flush drains the queue batch by batch and exits when it is empty; the
// next write starts a new one.
func (g *groupCommit) flush() {
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxBatch)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()

		rows := make([]*storage.AuditEvent, n)
		for i, p := range batch {
			rows[i] = p.row
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		err := g.insert(ctx, rows)
		cancel()
		for _, p := range batch {
			p.done <- err
		}
	}
}
