package clients_test

import (
	"reflect"
	"testing"

	"github.com/latchhq/latch/clients"
)

// TestNewTakesManageStore pins the capability in the constructor's type: a
// store that cannot manage clients must fail to build, not answer the first
// management request with "store cannot manage clients" (the run-time
// assertion this replaced).
func TestNewTakesManageStore(t *testing.T) {
	got := reflect.TypeOf(clients.New).In(0)
	if want := reflect.TypeFor[clients.ManageStore](); got != want {
		t.Fatalf("clients.New takes %v, want %v", got, want)
	}
}
