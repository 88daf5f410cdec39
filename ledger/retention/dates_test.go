package retention

import (
	"testing"
	"time"
)

// TestDayStringMatchesTimeFormat: the hand-written date is time's, on
// every day from 1600 to 2400 and around the ends of years 0 and 9999.
func TestDayStringMatchesTimeFormat(t *testing.T) {
	check := func(d Day) {
		t.Helper()
		want := d.Time().Format("2006-01-02")
		if got := d.String(); got != want {
			t.Fatalf("day %d: %q, time says %q", int(d), got, want)
		}
		if got := d.AppendDate([]byte("x")); string(got) != "x"+want {
			t.Fatalf("day %d: appended %q, time says %q", int(d), got, want)
		}
		y, m, dd := civil(d)
		if ty, tm, tdd := d.Time().Date(); y != ty || m != int(tm) || dd != tdd {
			t.Fatalf("day %d: civil %d-%d-%d, time says %d-%d-%d", int(d), y, m, dd, ty, tm, tdd)
		}
	}
	lo := DayOf(time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC)
	hi := DayOf(time.Date(2400, 12, 31, 0, 0, 0, 0, time.UTC), time.UTC)
	for d := lo; d <= hi; d++ {
		check(d)
	}
	for _, y := range []int{-1, 0, 1, 9999, 10000} {
		base := DayOf(time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC)
		for d := base - 400; d < base+400; d++ {
			check(d)
		}
	}
}
