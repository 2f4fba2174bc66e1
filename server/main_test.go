package server_test

import (
	"os"
	"testing"

	"github.com/latchhq/latch/storage/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster that some tests start.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
