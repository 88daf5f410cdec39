package manager

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/loyalty-terminal/loyalty/device/wiegand"
)

// ErrBadCard reports a simulated Wiegand card that is not
// "facility-number" within the 26- or 34-bit format's ranges.
var ErrBadCard = errors.New("simulated wiegand card must be facility-number, e.g. 123-45678")

// simWiegand feeds the real Wiegand decoder through two in-memory GPIO
// lines, one falling edge per bit, as a reader's D0/D1 pulses would.
type simWiegand struct {
	mu     sync.Mutex // one card at a time
	d0, d1 *gpiotest.Pin
	r      *wiegand.Reader
}

func newSimWiegand(name string) *simWiegand {
	return &simWiegand{
		d0: &gpiotest.Pin{N: name + "-D0", L: gpio.High, EdgesChan: make(chan gpio.Level, 1)},
		d1: &gpiotest.Pin{N: name + "-D1", L: gpio.High, EdgesChan: make(chan gpio.Level, 1)},
	}
}

// parseCard reads "facility-number": 26 bits when the facility fits in 8
// bits, else 34.
func parseCard(code string) (wiegand.Card, error) {
	f, n, ok := strings.Cut(strings.TrimSpace(code), "-")
	if !ok {
		return wiegand.Card{}, fmt.Errorf("%w: %q", ErrBadCard, code)
	}
	fac, err1 := strconv.ParseUint(f, 10, 16)
	num, err2 := strconv.ParseUint(n, 10, 16)
	if err1 != nil || err2 != nil {
		return wiegand.Card{}, fmt.Errorf("%w: %q", ErrBadCard, code)
	}
	c := wiegand.Card{Bits: 26, Facility: uint32(fac), Number: uint32(num)}
	if fac > 255 {
		c.Bits = 34
	}
	return c, nil
}

// inject pulses the card's bits one by one, waiting (bounded) for the
// reader to take each before the next, so the two lines' watchers cannot
// reorder bits; then it waits for the frame gap to end the frame.
func (s *simWiegand) inject(code string) error {
	c, err := parseCard(code)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.wait(func(n int) bool { return n == 0 }); err != nil {
		return fmt.Errorf("simulated wiegand: earlier frame still pending: %w", err)
	}
	for i, b := range wiegand.Encode(c) {
		line := s.d0
		if b == 1 {
			line = s.d1
		}
		select {
		case line.EdgesChan <- gpio.Low:
		case <-time.After(2 * time.Second):
			return errors.New("simulated wiegand: reader not running")
		}
		if err := s.wait(func(n int) bool { return n >= i+1 }); err != nil {
			return fmt.Errorf("simulated wiegand: bit %d not taken: %w", i+1, err)
		}
	}
	return s.wait(func(n int) bool { return n == 0 })
}

// wait polls the decoder's pending bit count until cond holds or 2 s pass.
func (s *simWiegand) wait(cond func(pending int) bool) error {
	deadline := time.Now().Add(2 * time.Second)
	for !cond(s.r.Pending()) {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(200 * time.Microsecond)
	}
	return nil
}
