package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loyalty-terminal/loyalty/cmd/internal/apiclient"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// Issue 16 with the real loyaltyd: its test-only clock (-test-clock, a
// JSON file the test rewrites) boots it in 1970, syncs it (the trust flag
// file), jumps it and steps it back.

// clockRules: 1 point per unit, 50-point first-purchase bonus, 100 birthday
// points, tiers base / silver (1,000.00, x2) / gold (2,000.00, x3), points
// expire after 12 months.
const clockRules = `rules:
  version: 1
  unit: 100
  timezone: UTC
  earn:
    points_per_unit: 1
  first_purchase_bonus: 50
  birthday:
    points: 100
  tiers:
    - name: base
    - name: silver
      min_spend: 100000
      multiplier: "2"
    - name: gold
      min_spend: 200000
      multiplier: "3"
  expiry_months: 12
`

// testClock drives the register's clock file.
type testClock struct {
	t      *testing.T
	path   string
	synced string
	f      struct {
		OffsetNS     int64  `json:"offset_ns"`
		SyncedFile   string `json:"synced_file"`
		BootID       string `json:"boot_id"`
		BootOffsetNS int64  `json:"boot_offset_ns"`
	}
}

func newTestClock(t *testing.T, r *register, wall time.Time, synced bool) *testClock {
	c := &testClock{t: t, path: filepath.Join(r.dir, "clock.json"), synced: filepath.Join(r.dir, "timesync", "synchronized")}
	c.f.SyncedFile = c.synced
	c.f.BootID = "e2e-boot-1"
	if err := os.MkdirAll(filepath.Dir(c.synced), 0o755); err != nil {
		t.Fatal(err)
	}
	c.set(wall)
	c.sync(synced)
	r.args = append(r.args, "-test-clock", c.path)
	r.env = append(r.env, "LOYALTYD_TEST_CLOCK_CONSENT=this-is-a-test")
	r.rules = clockRules
	return c
}

func bootTime(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

func (c *testClock) write() {
	b, _ := json.Marshal(c.f)
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		c.t.Fatal(err)
	}
}

// set moves the wall clock to wall (a jump or a step: no time passes).
func (c *testClock) set(wall time.Time) {
	c.f.OffsetNS = int64(time.Until(wall))
	c.write()
}

// sync creates or removes the trust flag file.
func (c *testClock) sync(on bool) {
	if on {
		if err := os.WriteFile(c.synced, nil, 0o644); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	_ = os.Remove(c.synced)
}

// reboot starts a new boot: new id, monotonic time from zero.
func (c *testClock) reboot(id string, wall time.Time, synced bool) {
	c.f.BootID, c.f.BootOffsetNS = id, -int64(bootTime(c.t))
	c.set(wall)
	c.sync(synced)
}

// status is the register's /v1/status clock part.
func clockStatus(r *register) map[string]any {
	_, st := r.api("GET", "/v1/status", nil)
	m, _ := st["clock"].(map[string]any)
	return m
}

// waitClock waits until the register's clock status satisfies cond.
func waitClock(t *testing.T, r *register, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := clockStatus(r)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("clock never %s: %v\n%s", what, m, r.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func enrolAPI(t *testing.T, r *register, id, birthday string) {
	t.Helper()
	body := map[string]any{"id": id, "name": "Member " + id, "aliases": []string{id}}
	if birthday != "" {
		body["birthday"] = birthday
	}
	if code, m := r.api("POST", "/v1/members", body); code != 201 && code != 200 {
		t.Fatalf("enrol %s: %d %v", id, code, m)
	}
}

func saleAPI(t *testing.T, r *register, id, member string, price int) map[string]any {
	t.Helper()
	code, m := r.api("POST", "/v1/sales", map[string]any{"id": id, "member_id": member,
		"lines": []map[string]any{{"no": 1, "sku": "X-" + id, "quantity": 1, "unit_price": price}}})
	if code != 201 {
		t.Fatalf("sale %s: %d %v", id, code, m)
	}
	return m
}

func balanceAPI(t *testing.T, r *register, member string) (float64, string) {
	t.Helper()
	code, m := r.api("GET", "/v1/members/"+member, nil)
	if code != 200 {
		t.Fatalf("member %s: %d %v", member, code, m)
	}
	b, _ := m["balance"].(float64)
	tier, _ := apiclient.Field(m, "member", "tier").(string)
	return b, tier
}

// stopAndOpen stops loyaltyd and opens its ledger read-only.
func stopAndOpen(t *testing.T, r *register) *ledger.Ledger {
	t.Helper()
	if _, err := r.term(); err != nil {
		t.Fatalf("loyaltyd exit: %v\n%s", err, r.logs())
	}
	l, err := ledger.Open(filepath.Join(r.dir, "ledger.db"), &ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestClockTestOnlyFlagRefused: -test-clock without the consent variable
// is refused before anything starts.
func TestClockTestOnlyFlagRefused(t *testing.T) {
	r := newRegister(t)
	r.writeConfig()
	cmd := exec.Command(bins.loyaltyd, "-config", r.cfgPath, "-test-clock", filepath.Join(r.dir, "clock.json"))
	cmd.Env = append(os.Environ(), "LOYALTYD_TEST_CLOCK_CONSENT=yes")
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err == nil || !strings.Contains(out, "for tests only") {
		t.Fatalf("loyaltyd with -test-clock and no consent: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "ledger.db")); err == nil {
		t.Fatal("a refused test clock still created the ledger")
	}
}

// TestClockBootIn1970 (issue 16, case 1): points earned before the first
// NTP sync survive the sync: no lot is dated from 1970, the sale times are
// corrected once (a clock.corrected event, history untouched), expiry
// counts from the corrected times, and a refund takes the sale's points
// once.
func TestClockBootIn1970(t *testing.T) {
	r := newRegister(t)
	boot := time.Unix(5, 0).UTC()
	c := newTestClock(t, r, boot, false)
	r.start()
	enrolAPI(t, r, "M1970", "")
	saleAPI(t, r, "s1", "M1970", 1000) // 10, first-purchase bonus pending
	s2 := saleAPI(t, r, "s2", "M1970", 1000)
	if s2["balance"].(float64) != 70 || apiclient.Field(s2, "sale", "clock_trusted") != false {
		t.Fatalf("untrusted sales: %v", s2)
	}
	for _, ev := range s2["events"].([]any) {
		if e := ev.(map[string]any); e["expires_at"] != nil || e["boot_id"] != "e2e-boot-1" {
			t.Fatalf("untrusted event with an expiry date or no boot: %v", e)
		}
	}
	if m := clockStatus(r); m["trusted"] != false || m["uncorrected"].(float64) < 5 {
		t.Fatalf("status before sync: %v", m)
	}
	// NTP: the wall clock jumps to the real date and the flag appears.
	synced := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	c.set(synced)
	c.sync(true)
	waitClock(t, r, "trusted and corrected", func(m map[string]any) bool {
		return m["trusted"] == true && m["uncorrected"] == float64(0)
	})
	time.Sleep(1500 * time.Millisecond) // another tick: expiry has run
	if b, _ := balanceAPI(t, r, "M1970"); b != 70 {
		t.Fatalf("balance after sync %v, want 70\n%s", b, r.logs())
	}
	if strings.Contains(r.logs(), "points expired") {
		t.Fatalf("points expired at sync\n%s", r.logs())
	}
	// A refund takes the sale's points once: 10 + the 50 bonus.
	code, m := r.api("POST", "/v1/sales/s2/refund", map[string]any{"id": "rf-s2"})
	if code != 201 && code != 200 || m["balance"].(float64) != 10 {
		t.Fatalf("refund: %d %v", code, m)
	}
	l := stopAndOpen(t, r)
	ps, _ := l.Purchases("M1970")
	for _, p := range ps[:2] {
		if p.ClockTrusted || p.WallTime.Year() != 1970 || p.CorrectedTime.Before(synced.Add(-time.Hour)) || p.CorrectedTime.After(synced) {
			t.Fatalf("purchase not corrected to the sync: %+v", p)
		}
	}
	recs, _ := l.Outbox(0, 1000)
	var corrections int
	for _, rec := range recs {
		if rec.Type == ledger.OutClock {
			corrections++
			var tc ledger.TimeCorrection
			if err := json.Unmarshal(rec.Data, &tc); err != nil || len(tc.Events) < 5 || !tc.Events[0].SameBoot {
				t.Fatalf("correction: %+v %v", tc, err)
			}
		}
	}
	if corrections != 1 {
		t.Fatalf("%d correction events, want 1", corrections)
	}
	evs, _ := l.Events("M1970")
	for _, ev := range evs {
		if ev.Kind == ledger.KindExpire {
			t.Fatalf("expired: %+v", ev)
		}
	}
}

// TestClockJumpAhead (issue 16, case 2): a trusted clock that jumps ahead
// is a clock fault: nothing expires, status and the display say so, setting
// it right ends the fault; only a person's confirmation lets the jump
// stand (and then the points expire).
func TestClockJumpAhead(t *testing.T) {
	r := newRegister(t)
	earned := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	c := newTestClock(t, r, earned, true)
	r.start()
	enrolAPI(t, r, "MJUMP", "")
	earnedPts := saleAPI(t, r, "j1", "MJUMP", 125000)["balance"].(float64) // 1,250.00 at silver: 2,500 points, expire 2027-12-09
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2028, 1, 9, 10, 0, 0, 0, time.UTC))
	r.start()
	m := waitClock(t, r, "in a fault", func(m map[string]any) bool { return m["fault"] == "ahead" })
	if m["trusted"] != false || m["synced"] != true {
		t.Fatalf("status in the fault: %v", m)
	}
	r.waitDisplay("the clock fault", func(b []byte) bool {
		l := upperLines(b)
		return len(l) > 0 && strings.Contains(l[len(l)-1], "Clock fault: ahead")
	})
	out, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out, "FAULT ahead") {
		t.Fatalf("loyaltyctl status: %v\n%s", err, out)
	}
	time.Sleep(1500 * time.Millisecond)
	if b, _ := balanceAPI(t, r, "MJUMP"); b != earnedPts || earnedPts != 2500 {
		t.Fatalf("balance in the fault %v, earned %v\n%s", b, earnedPts, r.logs())
	}
	// Set right again: the fault ends, nothing was lost.
	c.set(earned.Add(time.Minute))
	waitClock(t, r, "right again", func(m map[string]any) bool { return m["trusted"] == true })
	if b, _ := balanceAPI(t, r, "MJUMP"); b != earnedPts {
		t.Fatalf("balance after setting the clock right %v", b)
	}
	// Jump again, and a person confirms it: now the points expire.
	c.set(time.Date(2028, 1, 9, 10, 0, 0, 0, time.UTC))
	waitClock(t, r, "in a fault again", func(m map[string]any) bool { return m["fault"] == "ahead" })
	if out, err := ctl(t, "-addr", "http://"+r.addr, "clock", "confirm"); err != nil || !strings.Contains(out, "clock confirmed") {
		t.Fatalf("loyaltyctl clock confirm: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := balanceAPI(t, r, "MJUMP"); b == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed jump: points never expired\n%s", r.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClockFarAheadAfterRestart: a register restarts (a new boot: nothing
// measured how long it was off) with its synchronised clock a year ahead
// of the trusted time it saw: a clock fault, as a jump within one boot is.
// Status and the display say so, sales are still recorded, nothing
// expires until a person confirms the clock; then the old lot expires. A
// restart a few hours later is an ordinary one: the clock is trusted.
func TestClockFarAheadAfterRestart(t *testing.T) {
	r := newRegister(t)
	earned := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	c := newTestClock(t, r, earned, true)
	r.start()
	enrolAPI(t, r, "MAHEAD", "")
	earnedPts := saleAPI(t, r, "a1", "MAHEAD", 125000)["balance"].(float64) // expire 2027-12-09
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	farAhead := time.Date(2028, 1, 9, 10, 0, 0, 0, time.UTC)
	c.reboot("e2e-boot-2", farAhead, true)
	r.start()
	m := waitClock(t, r, "in a fault", func(m map[string]any) bool { return m["fault"] == "ahead" })
	if m["trusted"] != false || m["synced"] != true {
		t.Fatalf("status after the restart: %v", m)
	}
	r.waitDisplay("the clock fault", func(b []byte) bool {
		l := upperLines(b)
		return len(l) > 0 && strings.Contains(l[len(l)-1], "Clock fault: ahead")
	})
	out, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out, "FAULT ahead") {
		t.Fatalf("loyaltyctl status: %v\n%s", err, out)
	}
	held := saleAPI(t, r, "a2", "MAHEAD", 1000)
	if apiclient.Field(held, "sale", "clock_trusted") != false || apiclient.Field(held, "sale", "clock_fault") != "ahead" {
		t.Fatalf("sale in the fault: %v", held)
	}
	before := held["balance"].(float64)
	if out, err := ctl(t, "-addr", "http://"+r.addr, "clock", "confirm"); err != nil || !strings.Contains(out, "clock confirmed") {
		t.Fatalf("loyaltyctl clock confirm: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := balanceAPI(t, r, "MAHEAD"); b == before-earnedPts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed clock: the 2026 lot never expired\n%s", r.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// An ordinary restart, a few hours later: trusted at once.
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	c.reboot("e2e-boot-3", farAhead.Add(5*time.Hour), true)
	r.start()
	waitClock(t, r, "trusted after a normal restart", func(m map[string]any) bool { return m["trusted"] == true && m["fault"] == nil })
}

// TestClockTiers (issue 16, case 3): an untrusted clock keeps a gold
// member's tier and rate; untrusted purchases count towards a tier; a
// clock stepping back does not demote.
func TestClockTiers(t *testing.T) {
	r := newRegister(t)
	at := time.Date(2026, 12, 9, 23, 30, 0, 0, time.UTC)
	c := newTestClock(t, r, at, true)
	r.start()
	enrolAPI(t, r, "MGOLD", "")
	enrolAPI(t, r, "MSILV", "")
	saleAPI(t, r, "g1", "MGOLD", 200000) // gold at 23:30
	saleAPI(t, r, "v1", "MSILV", 60000)
	if _, tier := balanceAPI(t, r, "MGOLD"); tier != "gold" {
		t.Fatalf("tier %q", tier)
	}
	// The clock steps back 2 hours: gold stays, gold rate.
	c.set(at.Add(-2 * time.Hour))
	waitClock(t, r, "behind", func(m map[string]any) bool { return m["fault"] == "behind" })
	if m := saleAPI(t, r, "g2", "MGOLD", 1000); linePts(m) != 30 {
		t.Fatalf("sale after stepping back earned %v, want 30 (gold)", linePts(m))
	}
	// Reboot in 1970 without NTP: gold stays, gold rate; the silver
	// candidate's untrusted purchase counts.
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	c.reboot("e2e-boot-2", time.Unix(5, 0), false)
	r.start()
	if m := saleAPI(t, r, "g3", "MGOLD", 1000); linePts(m) != 30 {
		t.Fatalf("untrusted sale earned %v, want 30 (gold)", linePts(m))
	}
	if _, tier := balanceAPI(t, r, "MGOLD"); tier != "gold" {
		t.Fatalf("tier after an untrusted sale %q", tier)
	}
	saleAPI(t, r, "v2", "MSILV", 50000)
	c.set(at.Add(time.Hour))
	c.sync(true)
	waitClock(t, r, "trusted", func(m map[string]any) bool { return m["trusted"] == true && m["uncorrected"] == float64(0) })
	if m := saleAPI(t, r, "v3", "MSILV", 1000); linePts(m) != 20 {
		t.Fatalf("600 + 500 untrusted + 10: earned %v, want 20 (silver)\n%s", linePts(m), r.logs())
	}
	if _, tier := balanceAPI(t, r, "MSILV"); tier != "silver" {
		t.Fatalf("tier %q, want silver", tier)
	}
}

func linePts(m map[string]any) float64 {
	var p float64
	for _, ev := range m["events"].([]any) {
		if e := ev.(map[string]any); e["kind"] == "earn" {
			p += e["points"].(float64)
		}
	}
	return p
}

// TestClockBirthday (issue 16, case 5): a clock one year behind and then
// corrected gives the birthday bonus once; one year ahead and corrected
// gives it for the real birthday. The sale made on the wrong clock is
// recorded untrusted (a clock fault) and, once corrected, earns its
// birthday on the corrected time, as one clock-correction bonus.
func TestClockBirthday(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wrong time.Time
	}{
		{"a year behind", time.Date(2025, 12, 10, 12, 0, 0, 0, time.UTC)},
		{"a year ahead", time.Date(2027, 12, 10, 12, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegister(t)
			right := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
			c := newTestClock(t, r, right, true)
			r.start()
			enrolAPI(t, r, "MOTHER", "")
			enrolAPI(t, r, "MBDAY", "1990-12-10")
			saleAPI(t, r, "b0", "MOTHER", 1000) // sets the trusted-time mark
			c.set(tc.wrong)
			waitClock(t, r, "in a fault", func(m map[string]any) bool { return m["fault"] != nil && m["fault"] != "" })
			saleAPI(t, r, "b1", "MBDAY", 1000)
			c.set(right)
			waitClock(t, r, "right and corrected", func(m map[string]any) bool {
				return m["trusted"] == true && m["uncorrected"] == float64(0)
			})
			saleAPI(t, r, "b2", "MBDAY", 1000)
			l := stopAndOpen(t, r)
			evs, _ := l.Events("MBDAY")
			var birthday, correction ledger.Points
			for _, ev := range evs {
				switch {
				case ev.Kind == ledger.KindBonus && ev.Reason == "birthday":
					birthday += ev.Points
				case ev.Kind == ledger.KindBonus && ev.Reason == ledger.BonusClockCorrection:
					correction += ev.Points
				}
			}
			if birthday != 0 || correction != 100 {
				t.Fatalf("birthday bonus %d, correction %d; want the 2026 birthday once, on the corrected time\n%s", birthday, correction, fmt.Sprint(evs))
			}
		})
	}
}

// TestClockHeadOffice (issue 16, case 4): a register's 1970 sale reaches
// head office through mosquitto; head office leaves it out of the member's
// rhythm (the summary says every 7 days, not 4,000) and the report counts
// it as untrusted; once the register's clock is trusted its clock.corrected
// event dates the sale and both count it. Summary and report agree.
func TestClockHeadOffice(t *testing.T) {
	d := time.Date(2026, 12, 9, 12, 0, 0, 0, time.UTC)
	b := mosquittotest.Start(t, nil)
	st, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), &hqstore.Options{Clock: ledgertest.NewClock(d.Add(time.Hour), true)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), WaitTimeout: 5 * time.Second}, GapRetry: 200 * time.Millisecond, Signer: hqKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r := newRegister(t)
	r.extraCfg = syncCfg(b.URL())
	c := newTestClock(t, r, d.AddDate(0, 0, -21), true)
	drained := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, s := r.api("GET", "/v1/status", nil)
			if sy, _ := s["sync"].(map[string]any); sy != nil && sy["online"] == true && sy["pending"] == float64(0) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sync never drained: %v\n%s", s["sync"], r.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A weekly buyer: three trusted boots a week apart, then a boot in
	// 1970 that has not synced yet.
	r.start()
	enrolAPI(t, r, "MWEEK", "")
	for i, boot := range []string{"w1", "w2", "w3", "w4"} {
		if i > 0 {
			if _, err := r.term(); err != nil {
				t.Fatal(err)
			}
			if boot == "w4" {
				c.reboot("e2e-boot-"+boot, time.Unix(5, 0), false)
			} else {
				c.reboot("e2e-boot-"+boot, d.AddDate(0, 0, -21+7*i), true)
			}
			r.start()
		}
		saleAPI(t, r, boot, "MWEEK", 1000)
	}
	drained()
	check := func(step string, days, untrusted int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			sum, err := st.Summary("MWEEK")
			if err == nil && sum.Retention != nil && sum.Retention.PurchaseDays == days {
				ms, err := source.Collect(st, st)
				if err != nil {
					t.Fatal(err)
				}
				a, err := retention.Analyze(ms, d.Add(time.Hour), nil)
				if err != nil {
					t.Fatal(err)
				}
				rh := a.Profiles[0].Rhythm
				if sum.Retention.MeanInterval != 7 || rh.PurchaseDays != days || rh.MeanInterval != sum.Retention.MeanInterval || rh.LastDate() != sum.Retention.LastPurchase || a.Excluded.Untrusted != untrusted {
					t.Fatalf("%s: summary %+v, report %+v excluded %+v", step, *sum.Retention, rh, a.Excluded)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: head office summary %+v %v", step, sum.Retention, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check("1970 sale at head office", 3, 1)
	// NTP on the fourth boot: the register corrects the sale to "now".
	c.set(d)
	c.sync(true)
	waitClock(t, r, "trusted and corrected", func(m map[string]any) bool {
		return m["trusted"] == true && m["uncorrected"] == float64(0)
	})
	drained()
	check("after the correction", 4, 0)
}
