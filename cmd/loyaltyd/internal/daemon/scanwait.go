package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/device"
)

// scanAnswerWithin bounds how long POST /v1/scan waits for the checkout to
// take the injected code; past it the answer is "sent" without an outcome.
const scanAnswerWithin = 3 * time.Second

// scanWaiters hands the outcome of the next input of a device to whoever
// injected it (loyaltyctl scan), so the CLI can say what the till did.
type scanWaiters struct {
	mu sync.Mutex
	w  map[string][]chan api.ScanResult
}

func (s *scanWaiters) wait(dev string) chan api.ScanResult {
	ch := make(chan api.ScanResult, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		s.w = map[string][]chan api.ScanResult{}
	}
	s.w[dev] = append(s.w[dev], ch)
	return ch
}

func (s *scanWaiters) cancel(dev string, ch chan api.ScanResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.w[dev] {
		if c == ch {
			s.w[dev] = append(s.w[dev][:i], s.w[dev][i+1:]...)
			return
		}
	}
}

// done gives the outcome of one input of dev to the oldest waiter.
func (s *scanWaiters) done(dev string, res api.ScanResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.w[dev]
	if len(q) == 0 {
		return
	}
	q[0] <- res
	s.w[dev] = q[1:]
}

// scanResult is what the till did with one device input: refused by the
// device layer or the checkout (with the cashier's message, never the
// input), or taken.
func scanResult(ev device.Event, fx checkout.Effects, mapped bool) api.ScanResult {
	msg := ""
	if fx.Display != nil {
		msg = fx.Display.Line1
		if fx.Display.Line2 != "" {
			msg += " / " + fx.Display.Line2
		}
	}
	switch {
	case ev.Kind == device.KindReject:
		return api.ScanResult{Status: api.ScanRefused, Kind: ev.Kind.String(), Reason: device.ReasonLabel(ev.Reason), Message: msg}
	case !mapped:
		return api.ScanResult{Status: api.ScanIgnored, Kind: ev.Kind.String(), Message: "not an input the checkout takes"}
	case fx.Err != nil:
		return api.ScanResult{Status: api.ScanRefused, Kind: ev.Kind.String(), Reason: checkoutReason(fx.Err), Message: msg}
	}
	return api.ScanResult{Status: api.ScanAccepted, Kind: ev.Kind.String(), Message: msg}
}

// checkoutReason is a stable word for a checkout refusal: the API's error
// code for it (a refused sale's own reason when it wraps one), "refused"
// when the API has none.
func checkoutReason(err error) string {
	if code := api.ErrorCode(err); code != "internal" {
		return code
	}
	return "refused"
}

// scan injects code into a simulated device and waits for what the till
// did with it.
func (r *register) scan(ctx context.Context, dev, code string) (api.ScanResult, error) {
	if dev == "" {
		name, _, ok := r.firstSimScanner()
		if !ok {
			return api.ScanResult{}, errors.New("no simulated scanner configured")
		}
		dev = name
	}
	ch := r.scans.wait(dev)
	if err := r.mgr.Inject(dev, code); err != nil {
		r.scans.cancel(dev, ch)
		return api.ScanResult{}, err
	}
	t := time.NewTimer(scanAnswerWithin)
	defer t.Stop()
	select {
	case res := <-ch:
		return res, nil
	case <-t.C:
	case <-ctx.Done():
	}
	r.scans.cancel(dev, ch)
	return api.ScanResult{Status: api.ScanSent, Message: "sent; the till has not answered yet"}, nil
}
