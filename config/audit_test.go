package config

import (
	"testing"
	"time"
)

func TestAuditRetention(t *testing.T) {
	if got := mustLoad(t, LoadOptions{}).Audit.Retention; got != 90*24*time.Hour {
		t.Errorf("default audit.retention = %s, want 2160h", got)
	}
	c := mustLoad(t, LoadOptions{Environ: []string{"LATCH_AUDIT_RETENTION=24h"}})
	if c.Audit.Retention != 24*time.Hour {
		t.Errorf("LATCH_AUDIT_RETENTION=24h gave %s", c.Audit.Retention)
	}
	if c := mustLoad(t, LoadOptions{Environ: []string{"LATCH_AUDIT_RETENTION=0s"}}); c.Audit.Retention != 0 {
		t.Errorf("0s (keep forever) gave %s", c.Audit.Retention)
	}
	ve := loadErr(t, LoadOptions{Environ: []string{"LATCH_AUDIT_RETENTION=-1h"}})
	if !hasProblem(ve, "audit.retention", "keep forever") {
		t.Errorf("negative retention: %v", ve)
	}
}

func TestAuditExportSettle(t *testing.T) {
	if got := mustLoad(t, LoadOptions{}).Audit.ExportSettle; got != 30*time.Second {
		t.Errorf("default audit.export_settle = %s, want 30s", got)
	}
	c := mustLoad(t, LoadOptions{Environ: []string{"LATCH_AUDIT_EXPORT_SETTLE=2m"}})
	if c.Audit.ExportSettle != 2*time.Minute {
		t.Errorf("LATCH_AUDIT_EXPORT_SETTLE=2m gave %s", c.Audit.ExportSettle)
	}
	for _, bad := range []string{"0s", "-5s", "500ms"} {
		ve := loadErr(t, LoadOptions{Environ: []string{"LATCH_AUDIT_EXPORT_SETTLE=" + bad}})
		if !hasProblem(ve, "audit.export_settle", "at least 1s") {
			t.Errorf("LATCH_AUDIT_EXPORT_SETTLE=%s: %v", bad, ve)
		}
	}
}
