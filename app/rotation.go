package app

import (
	"context"
	"time"

	"github.com/latchhq/latch/keys"
)

// RunKeyRotation rotates the signing keys on the configured schedule until
// ctx ends; it returns at once when rotation_interval is 0. Every instance
// may run it: the database decides which one rotates.
func (a *App) RunKeyRotation(ctx context.Context) {
	k := a.Config.Keys
	if k.RotationInterval <= 0 {
		return
	}
	check := max(min(k.RotationInterval/4, 10*time.Minute), time.Second)
	a.Keys.RunSchedule(ctx, keys.Schedule{
		Interval: k.RotationInterval, PrePublish: k.PrePublication, RetireAfter: k.RetireAfter,
	}, check)
}
