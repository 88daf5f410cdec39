package wiegand_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/wiegand"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func bitsOf(s string) []byte {
	b := make([]byte, len(s))
	for i := range s {
		b[i] = s[i] - '0'
	}
	return b
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		card wiegand.Card
	}{
		{"26-bit", wiegand.Card{Bits: 26, Facility: 123, Number: 45678}},
		{"26-bit zero", wiegand.Card{Bits: 26}},
		{"26-bit max", wiegand.Card{Bits: 26, Facility: 255, Number: 65535}},
		{"34-bit", wiegand.Card{Bits: 34, Facility: 4321, Number: 9876}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bits := wiegand.Encode(tt.card)
			got, err := wiegand.Decode(bits)
			if err != nil || got != tt.card {
				t.Fatalf("Decode = %+v, %v", got, err)
			}
			for i := range bits {
				bad := append([]byte(nil), bits...)
				bad[i] ^= 1
				if _, err := wiegand.Decode(bad); !errors.Is(err, device.ErrParity) {
					t.Fatalf("bit %d flipped: %v", i, err)
				}
			}
			if _, err := wiegand.Decode(bits[:len(bits)-1]); !errors.Is(err, device.ErrBitCount) {
				t.Fatalf("lost bit: %v", err)
			}
		})
	}
}

// TestRecordedFrames replays testdata/frames.txt: each line is an expected
// outcome, then bit groups with the gap before each group in microseconds
// ("2000:0101" means bits 0,1,0,1 each 2 ms after the previous one).
func TestRecordedFrames(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "frames.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		n++
		fields := strings.Fields(line)
		want := strings.Split(fields[0], ",")
		d := wiegand.NewDecoder(0)
		at := t0
		var got []string
		record := func(r wiegand.Result, ok bool) {
			if !ok {
				return
			}
			if r.Err != nil {
				got = append(got, device.ReasonLabel(r.Err))
			} else {
				got = append(got, r.Card.String())
			}
		}
		for _, g := range fields[1:] {
			us, bits, _ := strings.Cut(g, ":")
			step, err := strconv.Atoi(us)
			if err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
			for _, b := range bits {
				at = at.Add(time.Duration(step) * time.Microsecond)
				record(d.Feed(wiegand.Line(b-'0'), wiegand.Falling, at))
				d.Feed(wiegand.Line(b-'0'), wiegand.Rising, at.Add(50*time.Microsecond))
			}
		}
		record(d.Flush(at.Add(time.Second)))
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("line %d: got %v, want %v", n, got, want)
		}
	}
	if n < 5 {
		t.Fatalf("only %d recorded frames", n)
	}
}

func TestFlushWaitsForGap(t *testing.T) {
	d := wiegand.NewDecoder(20 * time.Millisecond)
	for i, b := range wiegand.Encode(wiegand.Card{Bits: 26, Facility: 1, Number: 2}) {
		d.Feed(wiegand.Line(b), wiegand.Falling, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if _, ok := d.Flush(t0.Add(30 * time.Millisecond)); ok {
		t.Fatal("flushed before the gap")
	}
	r, ok := d.Flush(t0.Add(50 * time.Millisecond))
	if !ok || r.Err != nil || r.Card.String() != "1-2" || !r.At.Equal(t0.Add(25*time.Millisecond)) {
		t.Fatalf("flush: %+v %v", r, ok)
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add(wiegand.Encode(wiegand.Card{Bits: 26, Facility: 12, Number: 345}), []byte{2})
	f.Add(wiegand.Encode(wiegand.Card{Bits: 34, Facility: 1234, Number: 5}), []byte{1, 30})
	f.Add(bitsOf("0101"), []byte{})
	f.Fuzz(func(t *testing.T, bits, gaps []byte) {
		d := wiegand.NewDecoder(10 * time.Millisecond)
		at := t0
		check := func(r wiegand.Result, ok bool) {
			if !ok || r.Err != nil {
				return
			}
			// A decoded card must re-encode to a valid frame of its size.
			if c, err := wiegand.Decode(wiegand.Encode(r.Card)); err != nil || c != r.Card {
				t.Fatalf("round trip %+v: %+v %v", r.Card, c, err)
			}
		}
		for i, b := range bits {
			step := time.Millisecond
			if len(gaps) > 0 {
				step = time.Duration(gaps[i%len(gaps)]) * time.Millisecond
			}
			at = at.Add(step)
			check(d.Feed(wiegand.Line(b&1), wiegand.Edge(b>>1&1), at))
		}
		check(d.Flush(at.Add(time.Second)))
	})
}

// pins returns two gpiotest pins with unbuffered edge channels.
func pins() (*gpiotest.Pin, *gpiotest.Pin) {
	return &gpiotest.Pin{N: "D0", Num: 17, EdgesChan: make(chan gpio.Level)},
		&gpiotest.Pin{N: "D1", Num: 27, EdgesChan: make(chan gpio.Level)}
}

func TestReaderWithGPIOTest(t *testing.T) {
	d0, d1 := pins()
	r, err := wiegand.NewReader(wiegand.Options{Name: "wiegand0", D0: d0, D1: d1, FrameGap: 500 * time.Millisecond,
		Poll: 10 * time.Millisecond, Facilities: []uint32{123}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var evs []device.Event
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, func(e device.Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() })
	}()
	// In() drains pending edges: wait until both lines are set up.
	for deadline := time.Now().Add(5 * time.Second); r.Health().State != device.StateHealthy; {
		if time.Now().After(deadline) {
			t.Fatal("reader not started")
		}
		time.Sleep(time.Millisecond)
	}
	send := func(bits []byte) {
		// A reader leaves a silent gap between frames: wait until the
		// previous frame has been completed.
		for deadline := time.Now().Add(5 * time.Second); r.Pending() != 0; {
			if time.Now().After(deadline) {
				t.Fatal("previous frame never completed")
			}
			time.Sleep(time.Millisecond)
		}
		for i, b := range bits {
			pin := d0
			if b == 1 {
				pin = d1
			}
			pin.EdgesChan <- gpio.Low
			// Wait until the decoder has the bit so the next one on the
			// other line cannot overtake it.
			deadline := time.Now().Add(5 * time.Second)
			for r.Pending() != i+1 {
				if time.Now().After(deadline) {
					t.Fatalf("bit %d not consumed: pending %d, events %d", i, r.Pending(), len(evs))
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	waitEvents := func(n int) []device.Event {
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := append([]device.Event(nil), evs...)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %d events, want %d", len(got), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	send(wiegand.Encode(wiegand.Card{Bits: 26, Facility: 123, Number: 45678}))
	got := waitEvents(1)
	if got[0].Kind != device.KindMember || got[0].Payload != "123-45678" || got[0].Device != "wiegand0" {
		t.Fatalf("card: %+v", got[0])
	}
	bad := wiegand.Encode(wiegand.Card{Bits: 26, Facility: 123, Number: 1})
	bad[5] ^= 1
	send(bad)
	send(wiegand.Encode(wiegand.Card{Bits: 26, Facility: 7, Number: 1}))
	send(bitsOf("0101"))
	got = waitEvents(4)
	for i, want := range []error{device.ErrParity, device.ErrNotMemberCard, device.ErrBitCount} {
		if !errors.Is(got[i+1].Reason, want) {
			t.Errorf("event %d: %v, want %v", i+1, got[i+1].Reason, want)
		}
	}
	h := r.Health()
	if h.Frames != 1 || h.Rejects["parity"] != 1 || h.Rejects["bit_count"] != 1 || h.State != device.StateHealthy {
		t.Errorf("health %+v", h)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestReaderPinSetupFails(t *testing.T) {
	d0 := &gpiotest.Pin{N: "D0"} // no EdgesChan: In with an edge fails
	_, d1 := pins()
	r, err := wiegand.NewReader(wiegand.Options{Name: "w", D0: d0, D1: d1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), func(device.Event) {}); err == nil {
		t.Fatal("Run succeeded without usable pins")
	}
	if r.Health().State != device.StateUnhealthy {
		t.Fatalf("health %+v", r.Health())
	}
}
