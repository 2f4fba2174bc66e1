package config

import (
	"errors"
	"testing"
	"time"
)

// TestDPoPPARKeysOptions covers the DPoP, PAR and key-rotation settings:
// booleans from the environment, caps, and the retirement floor.
func TestDPoPPARKeysOptions(t *testing.T) {
	c := mustLoad(t, LoadOptions{Environ: []string{
		"LATCH_DPOP_NONCE_REQUIRED=true", "LATCH_DPOP_IAT_WINDOW=30s", "LATCH_PAR_REQUIRED=1",
		"LATCH_PAR_LIFETIME=90s", "LATCH_KEYS_ROTATION_INTERVAL=720h", "LATCH_KEYS_RETIRE_AFTER=2h",
	}})
	if !c.DPoP.NonceRequired || c.DPoP.IATWindow != 30*time.Second || !c.PAR.Required ||
		c.PAR.Lifetime != 90*time.Second || c.Keys.RotationInterval != 720*time.Hour || c.Keys.RetireAfter != 2*time.Hour {
		t.Fatalf("options not applied: %+v %+v %+v", c.DPoP, c.PAR, c.Keys)
	}
	for _, tc := range []struct {
		env      []string
		key, msg string
	}{
		{[]string{"LATCH_DPOP_NONCE_REQUIRED=maybe"}, "dpop.nonce_required", "boolean"},
		{[]string{"LATCH_DPOP_IAT_WINDOW=1h"}, "dpop.iat_window", "at most 10m"},
		{[]string{"LATCH_PAR_LIFETIME=0s"}, "par.lifetime", "greater than 0"},
		{[]string{"LATCH_KEYS_ROTATION_INTERVAL=-1h"}, "keys.rotation_interval", "positive"},
		{[]string{"LATCH_KEYS_RETIRE_AFTER=30m"}, "keys.retire_after", "longest JWT lifetime"},
	} {
		_, err := Load(LoadOptions{Environ: tc.env})
		var ve *ValidationError
		if !errors.As(err, &ve) || !hasProblem(ve, tc.key, tc.msg) {
			t.Errorf("%v: want problem %s %q, got %v", tc.env, tc.key, tc.msg, err)
		}
	}
}
