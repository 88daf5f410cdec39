package devicetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/devicetest"
	"github.com/loyalty-terminal/loyalty/device/display"
)

func TestDisplay(t *testing.T) {
	d := &devicetest.Display{}
	ctx := context.Background()
	_ = d.Show(ctx, [2]string{"a", "b"})
	_ = d.Show(ctx, [2]string{"c", "d"})
	if got := d.Last(); got != [2]string{"c", "d"} || len(d.Shown()) != 2 {
		t.Fatalf("last %v shown %v", got, d.Shown())
	}
	if err := d.Brightness(ctx, 5); !errors.Is(err, display.ErrBrightness) {
		t.Fatal(err)
	}
	d.Err = errors.New("unplugged")
	if err := d.Show(ctx, [2]string{"x", "y"}); err == nil || len(d.Shown()) != 2 {
		t.Fatal("failing display recorded a show")
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := devicetest.NewClock(t0)
	c.Advance(time.Second)
	if now, trusted := c.Now(); !now.Equal(t0.Add(time.Second)) || !trusted {
		t.Fatal(now, trusted)
	}
}
