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

func TestDayNames(t *testing.T) {
	var n dayNames
	for _, d := range []Day{20000, 19000, 21000, 20000, -5, 1 << 20, 20001} {
		if got, want := n.name(d), d.String(); got != want {
			t.Fatalf("day %d: %q, want %q", int(d), got, want)
		}
	}
	if a, b := n.name(20000), n.name(20000); a != b || len(n.s) > maxDayNames {
		t.Fatalf("names %q %q span %d", a, b, len(n.s))
	}
}
