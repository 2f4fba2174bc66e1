package latchtest

import (
	"context"
	"database/sql"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// SQLCounter counts the SQL statements and transactions a store issues, so
// tests can pin the round trips each operation costs. Round trips are the
// budget that matters on PostgreSQL, where each one is a network hop.
type SQLCounter struct {
	mu    sync.Mutex
	stmts []string
	txs   int
}

// Counts is a snapshot: statements (each SQL statement, BEGIN and COMMIT
// excluded) and transactions begun.
type Counts struct {
	Statements int
	Tx         int
	SQL        []string
}

// CountSQL installs a counter on db. It must run before the traffic it
// measures and is meant for a database no other test shares.
func CountSQL(db *gorm.DB) *SQLCounter {
	c := &SQLCounter{}
	record := func(tx *gorm.DB) {
		// DryRun: GORM renders subqueries through the callbacks too.
		if tx.DryRun || tx.Statement == nil || tx.Statement.SQL.Len() == 0 {
			return
		}
		c.mu.Lock()
		c.stmts = append(c.stmts, firstWords(tx.Statement.SQL.String()))
		c.mu.Unlock()
	}
	cb := db.Callback()
	_ = cb.Create().After("*").Register("latchtest:count", record)
	_ = cb.Query().After("*").Register("latchtest:count", record)
	_ = cb.Update().After("*").Register("latchtest:count", record)
	_ = cb.Delete().After("*").Register("latchtest:count", record)
	_ = cb.Row().After("*").Register("latchtest:count", record)
	_ = cb.Raw().After("*").Register("latchtest:count", record)
	switch pool := db.ConnPool.(type) {
	case *sql.DB:
		w := &countingPool{DB: pool, c: c}
		db.ConnPool = w
		db.Statement.ConnPool = w
	case *gorm.PreparedStmtDB: // PostgreSQL: wrap the pool under the statement cache
		if inner, ok := pool.ConnPool.(*sql.DB); ok {
			pool.ConnPool = &countingPool{DB: inner, c: c}
		}
	}
	return c
}

// Take returns the counts since the last Take and resets them.
func (c *SQLCounter) Take() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Counts{Statements: len(c.stmts), Tx: c.txs, SQL: c.stmts}
	c.stmts, c.txs = nil, 0
	return out
}

func firstWords(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 110 {
		q = q[:110] + "…"
	}
	return q
}

// countingPool counts BEGINs; GORM sends no callback for them.
type countingPool struct {
	*sql.DB
	c *SQLCounter
}

func (p *countingPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	p.c.mu.Lock()
	p.c.txs++
	p.c.mu.Unlock()
	return p.DB.BeginTx(ctx, opts)
}

func (p *countingPool) GetDBConn() (*sql.DB, error) { return p.DB, nil }
