package clock_test

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/clock"
)

type fixed struct{ t time.Time }

func (f fixed) Now() (time.Time, bool) { return f.t, false }

func TestSystem(t *testing.T) {
	before := time.Now()
	now, trusted := clock.System{}.Now()
	if !trusted {
		t.Error("the system clock is reported untrusted")
	}
	if now.Before(before) || now.After(time.Now()) {
		t.Errorf("System.Now() = %v, not between the calls around it", now)
	}
}

func TestOr(t *testing.T) {
	if _, ok := clock.Or(nil).(clock.System); !ok {
		t.Errorf("Or(nil) = %T, want clock.System", clock.Or(nil))
	}
	at := time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)
	got, trusted := clock.Or(fixed{at}).Now()
	if !got.Equal(at) || trusted {
		t.Errorf("Or(c).Now() = %v, %v; want c's %v, false", got, trusted, at)
	}
}

func TestWall(t *testing.T) {
	at := time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)
	if got := clock.Wall(fixed{at}); !got.Equal(at) {
		t.Errorf("Wall = %v, want %v even when untrusted", got, at)
	}
}
