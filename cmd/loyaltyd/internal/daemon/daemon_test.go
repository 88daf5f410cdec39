package daemon_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/daemon"
)

func TestTrustedClock(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "synchronized")
	fixed := time.Date(1970, 1, 1, 0, 0, 42, 0, time.UTC)
	tests := []struct {
		name     string
		file     bool
		kernel   bool
		disabled bool
		host     bool
		want     bool
	}{
		{name: "trust_host (dev): trusted without NTP", host: true, disabled: true, want: true},
		{name: "boot in 1970, nothing synced", want: false},
		{name: "timesyncd flag file", file: true, want: true},
		{name: "kernel says synced", kernel: true, want: true},
		{name: "file check disabled, kernel unsynced", file: true, disabled: true, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(flag)
			if tc.file {
				if err := os.WriteFile(flag, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := &daemon.TrustedClock{SyncedFile: flag, Adjtimex: func() bool { return tc.kernel }, NowFunc: func() time.Time { return fixed }}
			if tc.disabled {
				c.SyncedFile = "-"
			}
			c.TrustHost = tc.host
			now, trusted := c.Now()
			if trusted != tc.want || !now.Equal(fixed) {
				t.Fatalf("Now() = %v, %v; want %v, %v", now, trusted, fixed, tc.want)
			}
		})
	}
}

func TestLoggerJournalDropsTime(t *testing.T) {
	tests := []struct {
		name, format string
		journal      bool
		wantTime     bool
	}{
		{name: "terminal text", format: "text", wantTime: true},
		{name: "journal text", format: "text", journal: true},
		{name: "journal json", format: "json", journal: true},
		{name: "terminal json", format: "json", wantTime: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			daemon.NewLogger(&buf, "info", tc.format, tc.journal).Info("hello", "k", 1)
			hasTime := strings.Contains(buf.String(), "time")
			if hasTime != tc.wantTime || !strings.Contains(buf.String(), "hello") {
				t.Fatalf("%q: time present %v, want %v", buf.String(), hasTime, tc.wantTime)
			}
		})
	}
	var buf bytes.Buffer
	daemon.NewLogger(&buf, "warn", "text", false).Info("quiet")
	if buf.Len() != 0 {
		t.Fatalf("info logged at warn level: %q", buf.String())
	}
}
