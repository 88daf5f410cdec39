package scanner_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/scanner"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
	"github.com/loyalty-terminal/loyalty/device/sim"
)

// wireTime is the physical floor: an EAN-13 plus CR LF is 15 characters of
// 10 bits (8N1) at 9600 baud.
const wireTime = 15 * 10 * time.Second / 9600

// BenchmarkScanOverheadVsWire measures, over a real pty and the same serial
// code path as hardware, the p99 time from the last byte of a scan written
// to the pty master until the typed event is received from the device
// loop, and divides it by the scan's wire time at 9600 baud. It runs a
// fixed 2,000 scans whatever b.N is (make bench uses -benchtime 1x).
func BenchmarkScanOverheadVsWire(b *testing.B) {
	const scans = 2000
	sc, err := sim.NewScanner(sim.ScannerOptions{Terminator: "\r\n"})
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	c, _ := classify.New(classify.Options{})
	r, err := scanner.New(serialdev.Options{Name: "bench", Path: sc.Path(),
		Serial: serialdev.SerialOptions{Baud: 9600}, Frame: frame.Options{Terminator: frame.CRLF}}, c)
	if err != nil {
		b.Fatal(err)
	}
	events := make(chan device.Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, func(e device.Event) { events <- e }); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for r.Health().State != device.StateHealthy {
		if time.Now().After(deadline) {
			b.Fatal("scanner did not open")
		}
		time.Sleep(time.Millisecond)
	}
	w := sc.Master()
	scan := []byte("4006381333931\r\n")
	lat := make([]time.Duration, 0, scans)
	b.ResetTimer()
	for i := 0; i < scans; i++ {
		if _, err := w.Write(scan); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		select {
		case e := <-events:
			lat = append(lat, time.Since(start))
			if e.Kind != device.KindItem {
				b.Fatalf("event %+v", e)
			}
		case <-time.After(5 * time.Second):
			b.Fatal("no event")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	fmt.Printf("REPORT scan_latency_p50_us %.1f us\n", float64(p50)/float64(time.Microsecond))
	fmt.Printf("REPORT scan_latency_p99_us %.1f us\n", float64(p99)/float64(time.Microsecond))
	fmt.Printf("REPORT scan_wire_time_9600_us %.1f us\n", float64(wireTime)/float64(time.Microsecond))
	fmt.Printf("RATIO scan_overhead_vs_wire %.4f\n", float64(p99)/float64(wireTime))
}

// BenchmarkParseClassify measures framing plus classification per scan in
// process (no I/O), over a fixed 200,000 scans.
func BenchmarkParseClassify(b *testing.B) {
	const scans = 200000
	c, _ := classify.New(classify.Options{
		Members:  []classify.MemberPattern{{Prefix: "990", Length: 16, Check: classify.CheckLuhn}},
		Controls: map[string]string{"*TOTAL*": "TOTAL"},
	})
	a := frame.New(frame.Options{Terminator: frame.CRLF})
	h := scanner.Handler(c)
	in := []byte("4006381333931\r\n")
	now := time.Now()
	var out []frame.Output
	b.ResetTimer()
	start := time.Now()
	n := 0
	for i := 0; i < scans; i++ {
		out = a.Feed(in, now, out[:0])
		for _, o := range out {
			if h(o.Frame).Kind == device.KindItem {
				n++
			}
		}
	}
	el := time.Since(start)
	b.StopTimer()
	if n != scans {
		b.Fatalf("classified %d of %d", n, scans)
	}
	fmt.Printf("REPORT parse_classify_ns %.0f ns\n", float64(el)/scans)
}
