package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTestClock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clock.json")
	synced := filepath.Join(dir, "synchronized")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"offset_ns": -3600000000000, "synced_file": "` + synced + `", "boot_id": "b1", "boot_offset_ns": 0}`)
	for _, tc := range []struct {
		name, consent, file string
	}{
		{"no consent", "", path},
		{"wrong consent", "yes", path},
		{"missing file", TestClockConsent, filepath.Join(dir, "none.json")},
	} {
		if _, err := NewTestClock(tc.file, tc.consent); !errors.Is(err, ErrTestClock) {
			t.Errorf("%s: %v, want ErrTestClock", tc.name, err)
		}
	}
	c, err := NewTestClock(path, TestClockConsent)
	if err != nil {
		t.Fatal(err)
	}
	now, trusted := c.Now()
	if trusted || time.Until(now) > -59*time.Minute || time.Until(now) < -61*time.Minute {
		t.Fatalf("reading %v %v, want an hour behind, untrusted", now, trusted)
	}
	if err := os.WriteFile(synced, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, trusted := c.Now(); !trusted {
		t.Fatal("flag file present: still untrusted")
	}
	write(`{not json`) // a file being rewritten keeps the last reading
	if id, _ := c.Boot(); id != "b1" {
		t.Fatalf("boot %q after a bad file", id)
	}
}
