package hq

import (
	"strconv"
	"testing"
	"time"
)

// TestLimiter: each register gets burst requests at once, then one per
// every; a refusal is "first" once per run of refusals; registers do not
// share a bucket; an idle register's bucket fills up to burst, no more;
// pruning drops only full buckets.
func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	r1, r2 := regKey{"s1", "r1"}, regKey{"s2", "r2"}
	l := newLimiter(time.Second, 3)
	steps := []struct {
		name      string
		k         regKey
		at        time.Duration
		ok, first bool
	}{
		{"burst 1", r1, 0, true, false},
		{"burst 2", r1, 0, true, false},
		{"burst 3", r1, 0, true, false},
		{"over the burst", r1, 0, false, true},
		{"still over, logged once", r1, 500 * time.Millisecond, false, false},
		{"another register", r2, 500 * time.Millisecond, true, false},
		{"one more after every", r1, time.Second, true, false},
		{"then refused again", r1, time.Second, false, true},
		{"idle long: full again", r1, time.Minute, true, false},
		{"2 of the refilled burst", r1, time.Minute, true, false},
		{"3 of the refilled burst", r1, time.Minute, true, false},
		{"never more than burst", r1, time.Minute, false, true},
	}
	for _, s := range steps {
		ok, first := l.allow(s.k, t0.Add(s.at))
		if ok != s.ok || first != s.first {
			t.Fatalf("%s: allow = %v, first %v; want %v, %v", s.name, ok, first, s.ok, s.first)
		}
	}
	for i := range limiterPrune {
		l.allow(regKey{"s", strconv.Itoa(i)}, t0.Add(time.Hour))
	}
	if _, ok := l.regs[r2]; ok || len(l.regs) > limiterPrune {
		t.Fatalf("after pruning: %d registers tracked, r2's full bucket kept %v", len(l.regs), ok)
	}
	if _, ok := l.regs[regKey{"s", "0"}]; !ok {
		t.Fatal("pruning dropped a bucket that is not full")
	}
}
