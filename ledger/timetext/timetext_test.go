package timetext_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/timetext"
)

// TestAppendMatchesRFC3339Nano: times written through a kept second are
// AppendFormat's bytes: whole seconds, trailing zeros, zones, the same
// second again in another zone, the ends of the years JSON takes.
func TestAppendMatchesRFC3339Nano(t *testing.T) {
	var tt timetext.Text
	base := time.Date(2026, 12, 2, 17, 52, 8, 123_456_789, time.UTC)
	times := []time.Time{
		base, base.Add(-456_789), base.Truncate(time.Second), base.Add(time.Nanosecond - 123_456_789), base.Add(time.Second),
		base.In(time.FixedZone("", 3600)), base.In(time.FixedZone("x", -9000)), base.In(time.FixedZone("", 3630)),
		base.In(time.FixedZone("z", 0)), base.Local(), time.Date(0, 1, 1, 0, 0, 0, 500, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), base,
	}
	for _, tm := range times {
		_, off := tm.Zone()
		want := tm.AppendFormat([]byte("x"), time.RFC3339Nano)
		if got := tt.Append([]byte("x"), tm, off); !bytes.Equal(got, want) {
			t.Errorf("%v: kept second wrote %s, AppendFormat %s", tm, got, want)
		}
	}
}

// TestKeepRefusesWhatItCannotRead: text too short or without a zone
// keeps nothing.
func TestKeepRefusesWhatItCannotRead(t *testing.T) {
	for _, s := range []string{"", "2026-12-02T17:52:08", "2026-12-02T17:52:08.123"} {
		var tt timetext.Text
		tt.Keep(1, 0, []byte(s))
		if tt.Kept(1, 0) {
			t.Errorf("%q kept", s)
		}
	}
	var tt timetext.Text
	tt.Keep(1, 0, []byte("2026-12-02T17:52:08.5Z"))
	if !tt.Kept(1, 0) || tt.Kept(2, 0) || tt.Kept(1, 3600) {
		t.Fatal("kept the wrong second or zone")
	}
}
