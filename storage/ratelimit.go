package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Hits is one rate-limit counter: a bucket's count in the window that ends
// at Expires (Unix seconds).
type Hits struct {
	Bucket  string
	Hits    int64
	Expires int64
}

// AddHits counts one hit for each bucket in the fixed window
// [windowStart, windowEnd) (Unix seconds) and returns the new counts by
// bucket. It is one upsert, so every instance sharing the database counts
// into the same rows and concurrent hits are never lost.
func (s *Store) AddHits(ctx context.Context, buckets []string, windowStart, windowEnd int64) (map[string]int64, error) {
	if len(buckets) == 0 {
		return map[string]int64{}, nil
	}
	// One order for every caller, so two upserts of the same rows on
	// PostgreSQL lock them in the same order and cannot deadlock.
	buckets = slices.Compact(slices.Sorted(slices.Values(buckets)))
	var (
		q    strings.Builder
		args = make([]any, 0, 3*len(buckets))
	)
	q.WriteString("INSERT INTO rate_limits (bucket, window_start, hits, expires_at) VALUES ")
	for i, b := range buckets {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, 1, ?)")
		args = append(args, b, windowStart, windowEnd)
	}
	q.WriteString(" ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING bucket, hits")
	var rows []struct {
		Bucket string
		Hits   int64
	}
	if err := s.conn(ctx).Raw(q.String(), args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count rate-limit hits: %w", translate(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Bucket] = r.Hits
	}
	return out, nil
}

// HotBuckets returns the counters of windows still open at now (Unix
// seconds) that reached min hits, at most limit of them, fullest first.
func (s *Store) HotBuckets(ctx context.Context, now, min int64, limit int) ([]Hits, error) {
	var out []Hits
	err := s.conn(ctx).Raw("SELECT bucket, hits, expires_at AS expires FROM rate_limits WHERE expires_at > ? AND hits >= ? ORDER BY hits DESC LIMIT ?",
		now, min, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("read rate-limit counters: %w", translate(err))
	}
	return out, nil
}
