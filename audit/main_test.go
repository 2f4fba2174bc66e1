package audit_test

import (
	"os"
	"testing"

	"github.com/latchhq/latch/storage/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
