package app

import (
	"context"
	"sync"
	"time"

	"github.com/latchhq/latch/storage"
)

// RunBackground runs the periodic work every instance does until ctx ends:
// reloading signing keys (so a rotation through any instance reaches this
// one within keys.reload_interval), delivering back-channel logout tokens
// and, unless janitor.interval is 0,
// purging expired rows and audit events past audit.retention. It returns at once; the work runs in goroutines.
// The returned wait blocks until they have all stopped after ctx ends, so a
// shutdown can close the database knowing no job still uses it.
func (a *App) RunBackground(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() { a.Keys.Run(ctx, a.Config.Keys.ReloadInterval) })
	wg.Go(func() { a.Logout().Run(ctx, a.Config.Logout.BackchannelPollInterval) })
	if a.Config.Janitor.Interval > 0 {
		wg.Go(func() { a.runJanitor(ctx, a.Config.Janitor.Interval) })
	}
	return wg.Wait
}

func (a *App) runJanitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Another instance purging at the same moment is harmless; a
			// failed pass (database briefly away) is retried next tick.
			if _, err := a.Purge(ctx); err != nil && ctx.Err() == nil {
				a.Log.Warn("janitor", "err", err)
			}
		}
	}
}

// Purge deletes expired rows once, as the janitor settings say.
func (a *App) Purge(ctx context.Context) (storage.PurgeResult, error) {
	j := a.Config.Janitor
	res, err := a.Store.Purge(ctx, storage.JanitorOptions{
		BatchSize: j.BatchSize, ReplayGrace: j.ReplayGrace, AuditRetention: a.Config.Audit.Retention,
		DynamicClientIdle: a.Config.DynamicClients.IdleLifetime,
	})
	if n := res.Total(); n > 0 {
		a.Log.Debug("janitor purged expired rows", "rows", n)
	}
	return res, err
}
