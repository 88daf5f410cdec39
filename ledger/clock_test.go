package ledger_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// clockRules: 1 point per currency unit, tiers base / silver (1,000.00,
// x2) / gold (2,000.00, x3), a 50-point first-purchase bonus, 100 birthday
// points within 6 days after the birthday, double points on Sundays, 12-month expiry.
const clockRules = `{"version":1,"timezone":"UTC","earn":{"points_per_unit":"1"},
 "tiers":[{"name":"base"},{"name":"silver","min_spend":100000,"multiplier":"2"},{"name":"gold","min_spend":200000,"multiplier":"3"}],
 "first_purchase_bonus":50,"birthday":{"points":100,"days_after":6},
 "campaigns":[{"id":"sunday","multiplier":"2","weekdays":["sun"]}],
 "expiry_months":12}`

func clockFixture(t *testing.T, at time.Time, trusted bool) *fixture {
	t.Helper()
	rs, err := rules.Decode([]byte(clockRules))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *ledger.Options) { o.Engine = ledger.RuleSetEngine(rs) })
	f.clock.Reboot("boot-1", at, trusted)
	return f
}

func buy(t *testing.T, f *fixture, id, member string, amount ledger.Money) ledger.SaleResult {
	t.Helper()
	return f.sale(t, ledger.SaleRequest{ID: id, MemberID: member, Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: amount}}})
}

func enrolBirthday(t *testing.T, f *fixture, id, birthday string) {
	t.Helper()
	if _, err := f.l.Enrol(context.Background(), ledger.Member{ID: id, Name: id, Birthday: birthday}); err != nil {
		t.Fatal(err)
	}
}

// linePoints is what a sale's lines earned (bonuses left out).
func linePoints(res ledger.SaleResult) ledger.Points {
	var p ledger.Points
	for _, ev := range res.Events {
		if ev.Kind == ledger.KindEarn {
			p += ev.Points
		}
	}
	return p
}

func tierOf(t *testing.T, f *fixture, id string) string {
	t.Helper()
	m, err := f.l.Member(id)
	if err != nil {
		t.Fatal(err)
	}
	return m.Tier
}

func kinds(t *testing.T, f *fixture, id string, kind ledger.EventKind, reason string) (n int, pts ledger.Points) {
	t.Helper()
	evs, err := f.l.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == kind && (reason == "" || ev.Reason == reason) {
			n++
			pts += ev.Points
		}
	}
	return n, pts
}

// TestRefundNeverTakesPointsTwice: reversing an earn whose lot already
// expired reverses only what is left of it (issue 16, case 1).
func TestRefundNeverTakesPointsTwice(t *testing.T) {
	ctx := context.Background()
	year := 366 * 24 * time.Hour
	for _, tc := range []struct {
		name    string
		lines   []ledger.Line
		redeem  bool // spend 50 of the sale's points before they expire
		refunds [][]ledger.RefundLine
		want    ledger.Points // balance after the refunds
		taken   ledger.Points // points the refunds reversed
	}{
		{"whole sale expired, full refund takes nothing", []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 10000}}, false, [][]ledger.RefundLine{nil}, 0, 0},
		{"two lines expired, refunded one by one", []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 6000}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 4000}},
			false, [][]ledger.RefundLine{{{No: 1, Quantity: 1}}, {{No: 2, Quantity: 1}}}, 0, 0},
		{"half spent, half expired: the refund takes the spent half (debt)", []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 10000}}, true, [][]ledger.RefundLine{nil}, -50, 50},
		{"partial units after expiry", []ledger.Line{{No: 1, SKU: "A", Quantity: 4, UnitPrice: 2500}}, false, [][]ledger.RefundLine{{{No: 1, Quantity: 1}}, {{No: 1, Quantity: 3}}}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.enrol(t, "m1")
			f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1", Lines: tc.lines}) // 100 points
			if tc.redeem {
				f.sale(t, ledger.SaleRequest{ID: "r", MemberID: "m1", HQReachable: true, Lines: []ledger.Line{{No: 1, SKU: "Z", Quantity: 1, UnitPrice: 500}}, Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}})
			}
			f.clock.Advance(year)
			if _, err := f.l.ExpireDue(ctx); err != nil {
				t.Fatal(err)
			}
			if b := f.balance(t, "m1"); b != 0 {
				t.Fatalf("balance after expiry %d", b)
			}
			var taken ledger.Points
			for i, rl := range tc.refunds {
				res, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "rf" + itoa(uint64(i)), SaleID: "s1", Lines: rl})
				if err != nil {
					t.Fatal(err)
				}
				taken -= res.Earned
				var lines ledger.Points
				for _, l := range res.Refund.Lines {
					lines += l.Points
				}
				if lines != -res.Earned {
					t.Fatalf("refund lines say %d points, events %d", lines, -res.Earned)
				}
			}
			if b := f.balance(t, "m1"); b != tc.want || taken != tc.taken || f.sumEvents(t, "m1") != b {
				t.Fatalf("balance %d taken %d, want %d and %d", b, taken, tc.want, tc.taken)
			}
			_, expired := kinds(t, f, "m1", ledger.KindExpire, "")
			_, reversed := kinds(t, f, "m1", ledger.KindReverse, "")
			earned := ledger.Points(100)
			if tc.redeem {
				earned += 5 // the redeeming sale's own points
			}
			if -(expired + reversed) > earned {
				t.Fatalf("expired %d and reversed %d: more than the %d earned", -expired, -reversed, earned)
			}
		})
	}
}

// TestBirthdayOncePerOccurrence: the birthday bonus is credited once per
// occurrence whatever the clock did (issue 16, case 5).
func TestBirthdayOncePerOccurrence(t *testing.T) {
	bday := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		steps func(t *testing.T, f *fixture)
		want  int // birthday bonuses credited in all
	}{
		{"right clock: once in the window", func(t *testing.T, f *fixture) {
			f.clock.Set(bday, true)
			buy(t, f, "a", "m", 1000)
			f.clock.Set(bday.Add(48*time.Hour), true)
			buy(t, f, "b", "m", 1000)
		}, 1},
		{"a year behind, then corrected", func(t *testing.T, f *fixture) {
			f.clock.Set(bday, true)
			f.clock.Step(bday.AddDate(-1, 0, 1), true) // behind the mark: a fault
			buy(t, f, "a", "m", 1000)
			f.clock.Advance(time.Hour)
			f.clock.Step(bday.Add(time.Hour), true)
			if _, err := f.l.CorrectTimes(context.Background()); err != nil {
				t.Fatal(err)
			}
			buy(t, f, "b", "m", 1000)
		}, 1},
		{"a year ahead, then corrected: the real birthday still counts", func(t *testing.T, f *fixture) {
			f.clock.Set(bday.AddDate(0, 0, -3), true)
			f.clock.Step(bday.AddDate(1, 0, 1), true) // ahead of elapsed time: a fault
			buy(t, f, "a", "m", 1000)
			f.clock.Step(bday.AddDate(0, 0, -3), true)
			f.clock.Set(bday.Add(time.Hour), true)
			buy(t, f, "b", "m", 1000)
			f.clock.Set(bday.AddDate(1, 0, 1), true) // the next year's occurrence, really
			buy(t, f, "c", "m", 1000)
		}, 2},
		{"legacy given-at in this window counts as given", func(t *testing.T, f *fixture) {
			f.clock.Set(bday, true)
			buy(t, f, "a", "m", 1000)
			f.reopen(t)
			f.clock.Set(bday.Add(24*time.Hour), true)
			buy(t, f, "b", "m", 1000)
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := clockFixture(t, bday.AddDate(0, -1, 0), true)
			enrolBirthday(t, f, "m", "1990-03-05")
			tc.steps(t, f)
			// a corrected sale credits its birthday within its
			// clock-correction bonus (100 of it)
			n, _ := kinds(t, f, "m", ledger.KindBonus, rules.BonusBirthday)
			_, corr := kinds(t, f, "m", ledger.KindBonus, ledger.BonusClockCorrection)
			if got := n + int(corr/100); got != tc.want {
				t.Fatalf("birthday bonuses %d (+%d correction points), want %d", n, corr, tc.want)
			}
		})
	}
}

// TestClockFault: a synchronised clock behind the high-water mark, or
// ahead of it by more than the elapsed monotonic time, is a fault: expiry
// waits, the fault shows in ClockStatus, a person's confirmation or the
// clock agreeing again ends it (issue 16, case 2).
func TestClockFault(t *testing.T) {
	ctx := context.Background()
	f := clockFixture(t, time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC), true)
	f.enrol(t, "m")
	buy(t, f, "s1", "m", 125000) // 1,250 points, expire 2027-12-09
	start := f.balance(t, "m")
	steps := []struct {
		name    string
		move    func()
		fault   string
		expire  error
		balance ledger.Points
	}{
		{"right clock", func() { f.clock.Advance(time.Hour) }, "", nil, start},
		{"trusted jump to 2028", func() { f.clock.Step(time.Date(2028, 1, 9, 10, 0, 0, 0, time.UTC), true) }, ledger.FaultAhead, ledger.ErrClockFault, start},
		{"restart keeps the mark", func() { f.reopen(t) }, ledger.FaultAhead, ledger.ErrClockFault, start},
		{"set right again", func() { f.clock.Step(time.Date(2026, 12, 9, 11, 1, 0, 0, time.UTC), true) }, "", nil, start},
		{"step back 2 hours", func() { f.clock.Step(time.Date(2026, 12, 9, 9, 0, 0, 0, time.UTC), true) }, ledger.FaultBehind, ledger.ErrClockFault, start},
		{"forward within tolerance of elapsed", func() { f.clock.Step(time.Date(2026, 12, 9, 11, 3, 0, 0, time.UTC), true) }, "", nil, start},
		{"untrusted is no fault", func() { f.clock.Step(time.Unix(5, 0), false) }, "", ledger.ErrClockUntrusted, start},
		{"jump ahead again", func() { f.clock.Step(time.Date(2028, 1, 9, 10, 0, 0, 0, time.UTC), true) }, ledger.FaultAhead, ledger.ErrClockFault, start},
		{"a person confirms: expiry runs", func() {
			if _, err := f.l.ConfirmClock(ctx); err != nil {
				t.Fatal(err)
			}
		}, "", nil, 0},
	}
	for _, st := range steps {
		st.move()
		cs, err := f.l.ClockStatus()
		if err != nil || cs.Fault != st.fault || cs.Trusted != (st.fault == "" && cs.Synced) {
			t.Fatalf("%s: status %+v %v, want fault %q", st.name, cs, err, st.fault)
		}
		if _, err := f.l.ExpireDue(ctx); !errors.Is(err, st.expire) {
			t.Fatalf("%s: expire: %v, want %v", st.name, err, st.expire)
		}
		if b := f.balance(t, "m"); b != st.balance {
			t.Fatalf("%s: balance %d, want %d", st.name, b, st.balance)
		}
	}
	// A new boot behind the mark is behind; one further ahead of it than
	// a register is normally switched off (DefaultClockRestartStep) is
	// ahead; TestClockAfterRestart has the rest.
	f.clock.Reboot("boot-2", time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), true)
	if cs, _ := f.l.ClockStatus(); cs.Fault != ledger.FaultBehind {
		t.Fatalf("new boot behind the mark: %+v", cs)
	}
	f.clock.Reboot("boot-3", time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), true)
	if cs, _ := f.l.ClockStatus(); cs.Fault != ledger.FaultAhead || cs.Trusted {
		t.Fatalf("new boot far ahead of the mark: %+v", cs)
	}
}

// TestClockAfterRestart: a register has no real-time clock, so after a
// restart nothing bounds how far its synchronised clock may be ahead of
// the trusted-time mark but how long a register is plausibly switched
// off. A new boot's clock at most Options.ClockRestartStep (default
// DefaultClockRestartStep, 7 days) plus the time since the boot started
// ahead of the mark is trusted; further ahead it is a clock fault "ahead",
// as a jump within one boot is: expiry waits. Behind the mark is a fault
// whatever the step.
func TestClockAfterRestart(t *testing.T) {
	day := 24 * time.Hour
	mark := time.Date(2026, 12, 9, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		step  time.Duration // Options.ClockRestartStep; 0: the default
		off   time.Duration // the register is off this long (its clock reads mark+off)
		up    time.Duration // then runs this long unsynchronised before NTP answers
		fault string
	}{
		{"overnight", 0, 12 * time.Hour, 0, ""},
		{"a long weekend", 0, 4*day + 12*time.Hour, 0, ""},
		{"just under a week", 0, 7*day - time.Minute, 0, ""},
		{"just over a week", 0, 7*day + time.Minute, 0, ledger.FaultAhead},
		{"a year ahead", 0, 365 * day, 0, ledger.FaultAhead},
		{"behind the mark", 0, -time.Hour, 0, ledger.FaultBehind},
		{"a night off, then 10 days without NTP", 0, 12 * time.Hour, 10 * day, ""},
		{"a year ahead, 10 days after the boot", 0, 365 * day, 10 * day, ledger.FaultAhead},
		{"a shorter step configured", 2 * day, 3 * day, 0, ledger.FaultAhead},
		{"a longer step configured", 30 * day, 20 * day, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := rules.Decode([]byte(clockRules))
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, func(o *ledger.Options) { o.Engine, o.ClockRestartStep = ledger.RuleSetEngine(rs), tc.step })
			f.clock.Reboot("boot-1", mark, true)
			f.enrol(t, "m") // sets the mark
			f.reopen(t)
			f.clock.Reboot("boot-2", mark.Add(tc.off), tc.up == 0)
			f.clock.Advance(tc.up)
			f.clock.Step(mark.Add(tc.off+tc.up), true)
			cs, err := f.l.ClockStatus()
			if err != nil || cs.Fault != tc.fault || cs.Trusted != (tc.fault == "") {
				t.Fatalf("status %+v %v, want fault %q", cs, err, tc.fault)
			}
			want := ledger.ErrClockFault
			if tc.fault == "" {
				want = nil
			}
			if _, err := f.l.ExpireDue(context.Background()); !errors.Is(err, want) {
				t.Fatalf("expire: %v, want %v", err, want)
			}
		})
	}
}

// TestClockFarAheadAfterRestart: a register that restarts with its
// synchronised clock more than a week ahead of the trusted-time mark (a
// wrong NTP server on the store network, a clock that came up far in the
// future) makes no irreversible decision on it: sales are recorded and
// head office's acknowledgement is taken, but nothing expires and no
// confirmed event is forgotten for its age, through a restart of the
// daemon too, until a person confirms the clock; then expiry and the keep
// window run on it.
func TestClockFarAheadAfterRestart(t *testing.T) {
	ctx := context.Background()
	f := clockFixture(t, time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC), true)
	f.enrol(t, "m")
	buy(t, f, "s1", "m", 125000) // lot expires 2027-12-09
	start := f.balance(t, "m")
	if err := f.l.Confirm(lastSeq(t, f.l)); err != nil {
		t.Fatal(err)
	}
	keptFrom, _, _ := keptSeqs(t, f.l)

	f.reopen(t)
	f.clock.Reboot("boot-2", time.Date(2028, 1, 9, 10, 0, 0, 0, time.UTC), true)
	cs, err := f.l.ClockStatus()
	if err != nil || cs.Fault != ledger.FaultAhead || cs.Trusted || !cs.Synced {
		t.Fatalf("far ahead after a restart: %+v %v", cs, err)
	}
	if _, err := f.l.ExpireDue(ctx); !errors.Is(err, ledger.ErrClockFault) {
		t.Fatalf("expire while held: %v", err)
	}
	res := buy(t, f, "s2", "m", 1000) // recorded, untrusted, no expiry date
	if res.Sale.ClockTrusted || res.Sale.ClockFault != ledger.FaultAhead || !res.Events[0].ExpiresAt.IsZero() {
		t.Fatalf("sale while held: %+v %+v", res.Sale, res.Events[0])
	}
	if err := f.l.Confirm(lastSeq(t, f.l)); err != nil {
		t.Fatalf("head office's acknowledgement while held: %v", err)
	}
	if from, _, _ := keptSeqs(t, f.l); from != keptFrom {
		t.Fatalf("kept from %d while held, was %d: confirmed events forgotten on a held clock", from, keptFrom)
	}
	f.reopen(t)
	if cs, _ := f.l.ClockStatus(); cs.Fault != ledger.FaultAhead {
		t.Fatalf("a restart ended the hold: %+v", cs)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.l.ExpireDue(ctx); !errors.Is(err, ledger.ErrClockFault) {
		t.Fatalf("expire an hour later: %v", err)
	}
	if b := f.balance(t, "m"); b != start+res.Earned {
		t.Fatalf("balance while held %d, want %d", b, start+res.Earned)
	}

	// A person confirms the clock: the sale's time is corrected, the
	// 2026 lot expires, and the keep window forgets what is older.
	if cs, err := f.l.ConfirmClock(ctx); err != nil || !cs.Trusted || cs.Fault != "" {
		t.Fatalf("confirm: %+v %v", cs, err)
	}
	if _, err := f.l.CorrectTimes(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := f.l.ExpireDue(ctx); err != nil || n == 0 {
		t.Fatalf("expire after the confirmation: %d %v", n, err)
	}
	if b := f.balance(t, "m"); b != res.Earned {
		t.Fatalf("balance after the confirmation %d, want the held sale's %d", b, res.Earned)
	}
	buy(t, f, "s3", "m", 1000)
	if err := f.l.Confirm(lastSeq(t, f.l)); err != nil {
		t.Fatal(err)
	}
	if from, _, _ := keptSeqs(t, f.l); from <= keptFrom {
		t.Fatalf("kept from %d after the confirmation: the 2026 events are past the keep window", from)
	}
}

// lastSeq is the ledger's last outbox sequence number.
func lastSeq(t *testing.T, l *ledger.Ledger) uint64 {
	t.Helper()
	recs, err := l.Outbox(0, 100000)
	if err != nil || len(recs) == 0 {
		t.Fatalf("outbox: %d records, %v", len(recs), err)
	}
	return recs[len(recs)-1].Seq
}

// TestEventsCarryBootAndFault: every event records its boot and monotonic
// time; events made in a fault are recorded untrusted with the fault.
func TestEventsCarryBootAndFault(t *testing.T) {
	f := clockFixture(t, time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC), true)
	f.enrol(t, "m")
	res := buy(t, f, "s1", "m", 1000)
	if res.Sale.BootID != "boot-1" || res.Events[0].BootID != "boot-1" || !res.Sale.ClockTrusted {
		t.Fatalf("trusted sale: %+v", res.Sale)
	}
	f.clock.Step(time.Date(2026, 12, 9, 7, 0, 0, 0, time.UTC), true)
	res = buy(t, f, "s2", "m", 1000)
	if res.Sale.ClockTrusted || res.Sale.ClockFault != ledger.FaultBehind || res.Events[0].ClockFault != ledger.FaultBehind || !res.Events[0].ExpiresAt.IsZero() {
		t.Fatalf("sale in a fault: %+v %+v", res.Sale, res.Events[0])
	}
}

// TestTimeCorrection: a register boots in 1970; its sales are corrected
// when the clock is trusted (same boot: trusted now minus elapsed; earlier
// boot: the first trusted time), recorded as a clock.corrected event, and
// their lots get an expiry date only then (issue 16, case 1 and 4).
func TestTimeCorrection(t *testing.T) {
	ctx := context.Background()
	epoch := time.Unix(0, 0).UTC()
	f := clockFixture(t, epoch, false)
	// An earlier boot that never got a trusted clock.
	enrolBirthday(t, f, "m", "")
	buy(t, f, "old", "m", 1000) // first purchase: bonus pending
	f.clock.Reboot("boot-2", epoch.Add(3*time.Second), false)
	f.clock.Advance(10 * time.Minute)
	res := buy(t, f, "s1", "m", 2000) // 20 + 50 first-purchase bonus
	for _, ev := range res.Events {
		if !ev.ExpiresAt.IsZero() || ev.ClockTrusted {
			t.Fatalf("untrusted event with expiry: %+v", ev)
		}
	}
	if _, err := f.l.ExpireDue(ctx); !errors.Is(err, ledger.ErrClockUntrusted) {
		t.Fatalf("expire untrusted: %v", err)
	}
	if _, err := f.l.CorrectTimes(ctx); !errors.Is(err, ledger.ErrClockUntrusted) {
		t.Fatalf("correct untrusted: %v", err)
	}
	f.clock.Advance(5 * time.Minute)
	synced := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	f.clock.Step(synced, true) // NTP: the wall clock jumps, no time passes
	before := f.balance(t, "m")
	if n, err := f.l.ExpireDue(ctx); err != nil || n != 0 || f.balance(t, "m") != before {
		t.Fatalf("expire at sync: %d %v, balance %d -> %d", n, err, before, f.balance(t, "m"))
	}
	cs, _ := f.l.ClockStatus()
	if cs.Uncorrected == 0 {
		t.Fatalf("status before correction: %+v", cs)
	}
	// The count is kept, not walked (ClockStatus): a refused op leaves
	// it, a restart counts the same.
	if _, err := f.l.RecordSale(ctx, ledger.SaleRequest{ID: "s1", MemberID: "m", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 2000}}}); err == nil {
		t.Fatal("a sale id reused for another sale was accepted")
	}
	if got, _ := f.l.ClockStatus(); got.Uncorrected != cs.Uncorrected {
		t.Fatalf("uncorrected %d after a refused sale, was %d", got.Uncorrected, cs.Uncorrected)
	}
	f.reopen(t)
	if got, _ := f.l.ClockStatus(); got.Uncorrected != cs.Uncorrected {
		t.Fatalf("uncorrected %d after a restart, was %d", got.Uncorrected, cs.Uncorrected)
	}
	n, err := f.l.CorrectTimes(ctx)
	if err != nil || n != cs.Uncorrected {
		t.Fatalf("correct: %d %v, status counted %d", n, err, cs.Uncorrected)
	}
	if cs, _ := f.l.ClockStatus(); cs.Uncorrected != 0 {
		t.Fatalf("status after correction: %+v", cs)
	}
	ps, _ := f.l.Purchases("m")
	wantOld, wantS1 := synced, synced.Add(-5*time.Minute)
	if len(ps) != 2 || !ps[0].CorrectedTime.Equal(wantOld) || !ps[1].CorrectedTime.Equal(wantS1) {
		t.Fatalf("corrected purchases %+v, want %v and %v", ps, wantOld, wantS1)
	}
	// One correction record, history untouched.
	recs, err := f.l.Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var corr []ledger.TimeCorrection
	for _, r := range recs {
		switch r.Type {
		case ledger.OutClock:
			var tc ledger.TimeCorrection
			if err := json.Unmarshal(r.Data, &tc); err != nil {
				t.Fatal(err)
			}
			corr = append(corr, tc)
		case ledger.OutSale:
			var s ledger.Sale
			_ = json.Unmarshal(r.Data, &s)
			if s.ClockTrusted || s.WallTime.Year() != 1970 {
				t.Fatalf("sale rewritten: %+v", s)
			}
		}
	}
	if len(corr) != 1 || len(corr[0].Events) < 4 {
		t.Fatalf("corrections %+v", corr)
	}
	if again, err := f.l.CorrectTimes(ctx); err != nil || again != 0 {
		t.Fatalf("second correction: %d %v", again, err)
	}
	// Expiry counts from the corrected times.
	f.clock.Set(wantS1.AddDate(1, 0, 0).Add(-time.Minute), true)
	if n, _ := f.l.ExpireDue(ctx); n != 0 {
		t.Fatalf("expired %d lots before their corrected date", n)
	}
	f.clock.Set(synced.AddDate(1, 0, 0).Add(time.Minute), true)
	if n, _ := f.l.ExpireDue(ctx); n == 0 || f.balance(t, "m") != 0 {
		t.Fatalf("expired %d lots at the corrected date, balance %d", n, f.balance(t, "m"))
	}
}

// TestTiersOverCorrectedTimes: one window function over corrected times;
// an untrusted clock never changes a tier, a backward step never demotes
// (issue 16, case 3).
func TestTiersOverCorrectedTimes(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC) // a Wednesday
	t.Run("untrusted purchases count towards a tier", func(t *testing.T) {
		f := clockFixture(t, at, true)
		f.enrol(t, "m")
		buy(t, f, "a", "m", 60000)
		f.clock.Step(time.Unix(100, 0), false) // NTP lost after a reboot... same boot here
		buy(t, f, "b", "m", 50000)
		f.clock.Step(at.Add(time.Hour), true)
		if res := buy(t, f, "c", "m", 1000); tierOf(t, f, "m") != "silver" || linePoints(res) != 20 {
			t.Fatalf("tier %q earned %d, want silver and 20", tierOf(t, f, "m"), linePoints(res))
		}
	})
	t.Run("an untrusted clock keeps the tier and its rate", func(t *testing.T) {
		f := clockFixture(t, at, true)
		f.enrol(t, "m")
		buy(t, f, "a", "m", 200000) // gold
		f.clock.Reboot("boot-2", time.Unix(0, 0), false)
		res := buy(t, f, "b", "m", 1000)
		if tierOf(t, f, "m") != "gold" || linePoints(res) != 30 {
			t.Fatalf("untrusted sale: tier %q earned %d, want gold and 30", tierOf(t, f, "m"), linePoints(res))
		}
	})
	t.Run("a backward step does not demote", func(t *testing.T) {
		f := clockFixture(t, time.Date(2026, 12, 9, 23, 30, 0, 0, time.UTC), true)
		f.enrol(t, "m")
		f.clock.Set(time.Date(2025, 12, 10, 10, 0, 0, 0, time.UTC), true)
		f.clock.Set(time.Date(2026, 12, 9, 23, 30, 0, 0, time.UTC), true)
		buy(t, f, "a", "m", 200000) // gold at 23:30
		f.clock.Step(time.Date(2026, 12, 9, 21, 31, 0, 0, time.UTC), true)
		if res := buy(t, f, "b", "m", 1000); tierOf(t, f, "m") != "gold" || linePoints(res) != 30 {
			t.Fatalf("after stepping back: tier %q earned %d", tierOf(t, f, "m"), linePoints(res))
		}
	})
	t.Run("a sale stamped a year early does not end the window", func(t *testing.T) {
		f := clockFixture(t, at, true)
		f.enrol(t, "m")
		buy(t, f, "a", "m", 200000)
		f.clock.Step(at.AddDate(-1, 0, -1), true) // wrong but "synced"
		buy(t, f, "b", "m", 1000)
		f.clock.Step(at.Add(time.Hour), true)
		if res := buy(t, f, "c", "m", 1000); tierOf(t, f, "m") != "gold" || linePoints(res) != 30 {
			t.Fatalf("tier %q earned %d, want gold", tierOf(t, f, "m"), linePoints(res))
		}
	})
	t.Run("a corrected sale gets its campaign and tier once", func(t *testing.T) {
		sunday := time.Date(2026, 12, 13, 10, 0, 0, 0, time.UTC)
		f := clockFixture(t, time.Unix(0, 0), false)
		f.enrol(t, "m")
		buy(t, f, "a", "m", 1000) // 10 points at base, no campaign
		f.clock.Advance(time.Minute)
		f.clock.Step(sunday, true)
		if _, err := f.l.CorrectTimes(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.l.CorrectTimes(ctx); err != nil {
			t.Fatal(err)
		}
		n, pts := kinds(t, f, "m", ledger.KindBonus, ledger.BonusClockCorrection)
		if n != 1 || pts != 10 {
			t.Fatalf("correction bonus %d events %d points, want 1 and 10 (Sunday double)", n, pts)
		}
		res, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "r", SaleID: "a"})
		if err != nil || f.balance(t, "m") != 0 || res.Earned != -20 {
			t.Fatalf("refund of a corrected sale: %+v %v balance %d", res.Earned, err, f.balance(t, "m"))
		}
	})
}

// TestOpenMigratesSchema2: a ledger written by the previous program
// (schema 2: no untimed bucket, no expired rows, no high-water mark) opens,
// and an earn that expired under it is still never reversed twice.
func TestOpenMigratesSchema2(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.enrol(t, "m1")
	f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 10000}}})
	f.clock.Advance(400 * 24 * time.Hour)
	if n, err := f.l.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(f.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		rows := tx.Bucket([]byte("rows"))
		var del [][]byte
		_ = rows.ForEach(func(k, _ []byte) error {
			if k[len(k)-9] == 'x' {
				del = append(del, append([]byte(nil), k...))
			}
			return nil
		})
		if len(del) != 1 {
			t.Errorf("expired rows %d, want 1", len(del))
		}
		for _, k := range del {
			if err := rows.Delete(k); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket([]byte("untimed")); err != nil {
			return err
		}
		meta := tx.Bucket([]byte("meta"))
		if err := meta.Delete([]byte("clock")); err != nil {
			return err
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, 2)
		return meta.Put([]byte("schema"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(f.path, &ledger.Options{ReadOnly: true}); !errors.Is(err, ledger.ErrReadOnly) {
		t.Fatalf("read-only open of a schema 2 file: %v", err)
	}
	f.l = ledgertest.OpenAt(t, f.path, f.opts)
	res, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "r", SaleID: "s1"})
	if err != nil || res.Earned != 0 || f.balance(t, "m1") != 0 {
		t.Fatalf("refund after migration: earned %d balance %d %v", res.Earned, f.balance(t, "m1"), err)
	}
}

// TestCorrectionTierCountsSalesBefore: a sale rescored on its corrected
// time sees the 12-month window of the sales before it, as it would have
// on a trusted clock: under clockRules silver starts at 1,000.00 spent
// including the sale, so of four sales of 250.00 the fourth is the first
// at silver. outside15 found the third such sale, made while the clock
// was untrusted, credited silver on correction (its own purchase counted
// twice).
func TestCorrectionTierCountsSalesBefore(t *testing.T) {
	ctx := context.Background()
	epoch := time.Unix(0, 0).UTC()
	f := clockFixture(t, epoch, false)
	enrolBirthday(t, f, "m", "")
	for i := range 3 {
		buy(t, f, fmt.Sprintf("u%d", i), "m", 25000)
		f.clock.Advance(time.Minute)
	}
	f.clock.Step(time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC), true) // a Wednesday
	if n, err := f.l.CorrectTimes(ctx); err != nil || n == 0 {
		t.Fatalf("correct: %d %v", n, err)
	}
	st, err := f.l.Statement("m")
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range st.Lines {
		if ln.Reason == ledger.BonusClockCorrection {
			t.Errorf("clock-correction bonus %+v: below 1,000.00 spent with it, no sale of the three earns silver", ln)
		}
	}
	res := buy(t, f, "t4", "m", 25000)
	if got := linePoints(res); got != 500 {
		t.Errorf("the fourth sale (1,000.00 with it) earned %d line points, want 500 (silver, x2)", got)
	}
	if got, want := f.balance(t, "m"), ledger.Points(50+3*250+500); got != want {
		t.Errorf("balance %d, want %d", got, want)
	}
}
