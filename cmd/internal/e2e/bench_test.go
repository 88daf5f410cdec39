package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireTime is an EAN-13 plus CR LF (15 characters) at 9600 8N1: the
// physical floor of a scan (see the hardware brief).
const wireTime = 15600 * time.Microsecond

func p99(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*99+99)/100-1]
}

// BenchmarkCardToDisplay measures, on the real daemon, the time from the
// last byte of a member-card scan written to the scanner pty to the last
// byte of the balance line written to the display pty.
func BenchmarkCardToDisplay(b *testing.B) {
	r := newRegister(b)
	r.start()
	code, _ := r.api("POST", "/v1/members", map[string]any{"id": "m1", "name": "Dana Levi", "aliases": []string{memberCard}})
	if code != 201 {
		b.Fatalf("enrol: %d", code)
	}
	const n = 300
	var lat []time.Duration
	for i := 0; i < n+20; i++ {
		r.disp.mu.Lock()
		from := r.disp.b.Len()
		r.disp.mu.Unlock()
		t0 := r.scan(memberCard)
		var at time.Time
		deadline := time.Now().Add(5 * time.Second)
		for at.IsZero() {
			r.disp.mu.Lock()
			buf := r.disp.b.Bytes()[from:]
			if i := bytes.Index(buf, []byte("\x1bQB")); i >= 0 {
				if j := bytes.IndexByte(buf[i:], '\r'); j >= 0 {
					end := from + i + j + 1
					for _, s := range r.disp.log {
						if s.end >= end {
							at = s.at
							break
						}
					}
				}
			}
			r.disp.mu.Unlock()
			if at.IsZero() {
				if time.Now().After(deadline) {
					b.Fatalf("no display update for scan %d\n%s", i, r.logs())
				}
				select {
				case <-r.disp.ch:
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
		if i >= 20 { // warm-up excluded
			lat = append(lat, at.Sub(t0))
		}
	}
	p := p99(lat)
	fmt.Printf("REPORT card_to_display_p99_ms %.3f ms\n", float64(p)/1e6)
	fmt.Printf("RATIO card_to_display_vs_wire %.4f\n", float64(p)/float64(wireTime))
}

func rssMB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return -1
}

// BenchmarkDaemonStartAndRSS reports the real daemon's start-to-ready time
// (exec to /healthz answering) and its resident memory after 10,000 sales
// posted through the API.
func BenchmarkDaemonStartAndRSS(b *testing.B) {
	r := newRegister(b)
	var starts []time.Duration
	for i := 0; i < 5; i++ {
		starts = append(starts, r.start())
		if _, err := r.term(); err != nil {
			b.Fatal(err)
		}
	}
	ready := r.start()
	starts = append(starts, ready)
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	fmt.Printf("REPORT start_to_ready_ms %.1f ms\n", float64(starts[len(starts)/2])/1e6)
	// 10,000 sales spread over 400 members (and some anonymous), as a
	// day's trade is: one member buying 10,000 times is not a register's
	// life and makes the member's own history the cost.
	const members = 400
	for i := 0; i < members; i++ {
		code, _ := r.api("POST", "/v1/members", map[string]any{"id": fmt.Sprintf("m%d", i), "name": "Member", "aliases": []string{fmt.Sprintf("A%06d", i)}})
		if code != 201 {
			b.Fatalf("enrol: %d", code)
		}
	}
	const total, workers = 10000, 16
	var wg sync.WaitGroup
	var fails sync.Map
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	t0 := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				member := ""
				if i%4 != 0 {
					member = fmt.Sprintf(`"member_id":"m%d",`, i%members)
				}
				body := fmt.Sprintf(`{"id":"bench-%d",%s"lines":[{"no":1,"sku":"4006381333931","quantity":1,"unit_price":250}]}`, i, member)
				resp, err := client.Post("http://"+r.addr+"/v1/sales", "application/json", strings.NewReader(body))
				if err != nil || resp.StatusCode != 201 {
					fails.Store(i, err)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	n := 0
	fails.Range(func(any, any) bool { n++; return true })
	if n > 0 {
		b.Fatalf("%d sales failed", n)
	}
	fmt.Printf("REPORT daemon_sales_per_s_16_callers %.0f sales/s\n", total/el.Seconds())
	fmt.Printf("REPORT daemon_rss_mb_after_10k_sales %.1f MB\n", rssMB(r.cmd.Process.Pid))
}
