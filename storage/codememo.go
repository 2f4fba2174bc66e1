package storage

import (
	"sync"
	"time"
)

// codeMemo carries an authorization code's row from fosite's first read of
// it (validating the token request) to its second (issuing the tokens) a
// moment later in the same request, saving a round trip per code exchange.
//
// It is safe because the memo is never what stops a replay: the code is
// spent by a conditional update (spend), which has exactly one winner. A
// stale "active" row taken from here only lets a loser reach that update,
// where it fails with ErrInvalidatedAuthorizeCode and the server revokes the
// grant family, as for any concurrent redemption. Entries live seconds, are
// taken at most once and are dropped when the code is spent.
type codeMemo struct {
	mu sync.Mutex
	m  map[string]memoRow
}

type memoRow struct {
	row tokenRow
	exp time.Time
}

const (
	codeMemoTTL = 5 * time.Second
	maxCodeMemo = 4096
)

func (c *codeMemo) put(signature string, row tokenRow) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]memoRow{}
	}
	if len(c.m) >= maxCodeMemo {
		for k, v := range c.m {
			if !now.Before(v.exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCodeMemo {
			return
		}
	}
	c.m[signature] = memoRow{row: row, exp: now.Add(codeMemoTTL)}
}

func (c *codeMemo) take(signature string) (tokenRow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[signature]
	if !ok {
		return tokenRow{}, false
	}
	delete(c.m, signature)
	return v.row, time.Now().Before(v.exp)
}

func (c *codeMemo) drop(signature string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, signature)
}
