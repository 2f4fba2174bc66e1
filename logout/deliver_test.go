package logout

import (
	"testing"
	"time"
)

// The wait after each failure doubles from RetryDelay and stops at an
// hour, so a receiver that is down for a day is not hammered.
func TestBackoffDoublesUpToAnHour(t *testing.T) {
	s := New(nil, nil, nil, nil, nil, Options{RetryDelay: 30 * time.Second})
	for attempt, want := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute, 8: time.Hour, 50: time.Hour,
	} {
		if got := s.backoff(attempt); got != want {
			t.Errorf("after attempt %d: wait %s, want %s", attempt, got, want)
		}
	}
}
