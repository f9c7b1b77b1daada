package platform

import (
	"strings"
	"testing"
	"time"
)

func TestAuditRetentionVariable(t *testing.T) {
	cases := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"90d", 90 * 24 * time.Hour, false},
		{"720h", 720 * time.Hour, false},
		{"0d", 0, true},
		{"ninety", 0, true},
		{"10m", 0, true},
		{"-5d", 0, true},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			cfg, err := LoadConfig(func(k string) string {
				if k == "PICARD_AUDIT_RETENTION" {
					return c.value
				}
				return ""
			}, "")
			if c.wantErr {
				if err == nil || !strings.Contains(err.Error(), "PICARD_AUDIT_RETENTION") {
					t.Fatalf("want an error naming the variable, got %v", err)
				}
				return
			}
			if err != nil || cfg.AuditRetention != c.want {
				t.Fatalf("got %v %v, want %v", cfg.AuditRetention, err, c.want)
			}
		})
	}
}
