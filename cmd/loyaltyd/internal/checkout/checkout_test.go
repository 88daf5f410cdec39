package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// fakeLedger is an in-memory stand-in for the parts of *ledger.Ledger the
// machine uses: idempotent by sale id like the real one, 1 point per 1.00.
type fakeLedger struct {
	members  map[string]ledger.Member // by alias
	balances map[string]ledger.Points
	sales    map[string]ledger.SaleResult
	calls    int
	fail     error
}

func newFake() *fakeLedger {
	dana := ledger.Member{ID: "m1", Name: "Dana Levi", Aliases: []string{"2990000000002", "+972500000001"}, Language: "he"}
	return &fakeLedger{
		members:  map[string]ledger.Member{"2990000000002": dana, "+972500000001": dana},
		balances: map[string]ledger.Points{"m1": 120},
		sales:    map[string]ledger.SaleResult{},
	}
}

func (f *fakeLedger) Item(sku string) (checkout.Item, error) {
	switch sku {
	case "4006381333931":
		return checkout.Item{SKU: sku, Name: "Pencil HB", Price: 250}, nil
	case "96385074":
		return checkout.Item{SKU: sku, Name: "Notebook A5 with a long name", Price: 1000, Category: "paper"}, nil
	}
	return checkout.Item{}, errors.New("not in catalogue")
}

func (f *fakeLedger) LookupAlias(a string) (ledger.Member, error) {
	m, ok := f.members[a]
	if !ok {
		return ledger.Member{}, ledger.ErrUnknownMember
	}
	return m, nil
}

func (f *fakeLedger) Balance(id string) (ledger.Points, error) { return f.balances[id], nil }

func (f *fakeLedger) RecordSale(_ context.Context, req ledger.SaleRequest) (ledger.SaleResult, error) {
	f.calls++
	if f.fail != nil {
		return ledger.SaleResult{}, f.fail
	}
	if r, ok := f.sales[req.ID]; ok {
		r.Replayed = true
		return r, nil
	}
	var total ledger.Money
	for _, l := range req.Lines {
		total += ledger.Money(l.Quantity) * l.UnitPrice
	}
	var redeemed ledger.Points
	for _, rr := range req.Redemptions {
		redeemed += 100
		total -= 50
		_ = rr
	}
	res := ledger.SaleResult{Sale: ledger.Sale{ID: req.ID, MemberID: req.MemberID, Lines: req.Lines, Total: total}}
	if req.MemberID != "" {
		if f.balances[req.MemberID] < redeemed {
			return ledger.SaleResult{}, ledger.ErrInsufficient
		}
		res.Earned = ledger.Points(total / 100)
		res.Redeemed = redeemed
		f.balances[req.MemberID] += res.Earned - redeemed
		res.Balance = f.balances[req.MemberID]
	}
	f.sales[req.ID] = res
	return res, nil
}

var rewards = []rules.Reward{
	{ID: "coffee", Name: "Free coffee", Points: 100, Discount: 50},
	{ID: "bag", Name: "Tote bag", Points: 500, Discount: 300},
}

func setup() (*checkout.Machine, *fakeLedger, *ledgertest.Clock) {
	f := newFake()
	clk := ledgertest.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), true)
	n := 0
	m := checkout.New(checkout.Options{
		Register: "r1", Catalog: f, Members: f, Recorder: f, Clock: clk, Rewards: rewards,
		AbandonAfter: 5 * time.Minute, ReceiptHold: 20 * time.Second,
		NewSaleID: func() string { n++; return fmt.Sprintf("r1-%d", n) },
	})
	return m, f, clk
}

func item(sku string) checkout.Event { return checkout.Event{Kind: checkout.EvItem, Code: sku} }
func card(c string) checkout.Event   { return checkout.Event{Kind: checkout.EvCard, Code: c} }
func ctl(a string) checkout.Event    { return checkout.Event{Kind: checkout.EvControl, Action: a} }
func pick(id string) checkout.Event  { return checkout.Event{Kind: checkout.EvPickReward, Code: id} }

const (
	pencil   = "4006381333931"
	notebook = "96385074"
	danaCard = "2990000000002"
)

func TestFlow(t *testing.T) {
	type step struct {
		ev      checkout.Event
		advance time.Duration
	}
	tests := []struct {
		name      string
		steps     []step
		state     checkout.State
		lastErr   error // errors.Is on the last step's Err; nil = accepted
		lastSig   []checkout.SignalKind
		display   *checkout.Display // the last step's display, when checked
		calls     int               // RecordSale calls
		sales     int               // distinct sales recorded
		balance   ledger.Points
		viewState string
	}{
		{name: "item opens basket", steps: []step{{ev: item(pencil)}}, state: checkout.Basket,
			display: &checkout.Display{Line1: "Pencil HB", Line2: "Total 2.50"}, balance: 120, viewState: "basket"},
		{name: "unknown item asks the cashier", steps: []step{{ev: item("123")}}, state: checkout.Idle,
			lastErr: checkout.ErrUnknownItem, lastSig: []checkout.SignalKind{checkout.SignalError}, balance: 120},
		{name: "manual item after unknown", steps: []step{{ev: item("123")}, {ev: checkout.Event{Kind: checkout.EvManualItem, Code: "123", Price: 99, Name: "Gum"}}},
			state: checkout.Basket, display: &checkout.Display{Line1: "Gum", Line2: "Total 0.99"}, balance: 120},
		{name: "member card while idle shows points", steps: []step{{ev: card(danaCard)}}, state: checkout.Idle,
			display: &checkout.Display{Line1: "Dana Levi", Line2: "120 pts 380 to go"}, lastSig: []checkout.SignalKind{checkout.SignalOK}, balance: 120, viewState: "points"},
		{name: "my points returns to idle after hold", steps: []step{{ev: card(danaCard)}, {ev: checkout.Event{Kind: checkout.EvTick}, advance: 21 * time.Second}},
			state: checkout.Idle, display: &checkout.Display{}, balance: 120, viewState: "idle"},
		{name: "card first stays for the basket", steps: []step{{ev: card(danaCard)}, {ev: item(pencil)}}, state: checkout.Member,
			display: &checkout.Display{Line1: "Dana Levi", Line2: "120 pts 2.50"}, balance: 120, viewState: "member"},
		{name: "card first earns on the sale", steps: []step{{ev: card(danaCard)}, {ev: item(notebook), advance: 10 * time.Second}, {ev: ctl(checkout.ActComplete)}},
			state: checkout.Receipt, display: &checkout.Display{Line1: "+10 pts", Line2: "Balance 130"}, calls: 1, sales: 1, balance: 130, viewState: "receipt"},
		{name: "card first kept after the points display cleared", steps: []step{{ev: card(danaCard)}, {ev: checkout.Event{Kind: checkout.EvTick}, advance: 21 * time.Second},
			{ev: item(pencil), advance: 90 * time.Second}}, state: checkout.Member, balance: 120, viewState: "member"},
		{name: "card first forgotten after 2 minutes", steps: []step{{ev: card(danaCard)}, {ev: checkout.Event{Kind: checkout.EvTick}, advance: 21 * time.Second},
			{ev: checkout.Event{Kind: checkout.EvTick}, advance: 100 * time.Second}, {ev: item(pencil)}}, state: checkout.Basket, balance: 120, viewState: "basket"},
		{name: "card first forgotten without a tick", steps: []step{{ev: card(danaCard)}, {ev: item(pencil), advance: 121 * time.Second}}, state: checkout.Basket, balance: 120},
		{name: "card first then cancel forgets it", steps: []step{{ev: card(danaCard)}, {ev: ctl(checkout.ActCancel)}, {ev: item(pencil)}}, state: checkout.Basket, balance: 120},
		{name: "card on the receipt counts for the next sale", steps: []step{{ev: item(pencil)}, {ev: ctl(checkout.ActComplete)}, {ev: card(danaCard)}, {ev: item(notebook)}},
			state: checkout.Member, calls: 1, sales: 1, balance: 120, viewState: "member"},
		{name: "a member of the last sale is not carried over", steps: []step{{ev: item(pencil)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActComplete)}, {ev: item(notebook)}},
			state: checkout.Basket, calls: 1, sales: 1, balance: 122, viewState: "basket"},
		{name: "unknown card", steps: []step{{ev: item(pencil)}, {ev: card("2900000000099")}}, state: checkout.Basket,
			lastErr: checkout.ErrUnknownCard, lastSig: []checkout.SignalKind{checkout.SignalError}, balance: 120},
		{name: "sale with member", steps: []step{{ev: item(notebook)}, {ev: item(pencil)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActComplete)}},
			state: checkout.Receipt, display: &checkout.Display{Line1: "+12 pts", Line2: "Balance 132"}, lastSig: []checkout.SignalKind{checkout.SignalOK},
			calls: 1, sales: 1, balance: 132, viewState: "receipt"},
		{name: "double-pressed complete records once", steps: []step{{ev: item(notebook)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActComplete)}, {ev: ctl(checkout.ActComplete)}},
			state: checkout.Receipt, lastErr: checkout.ErrAlreadyDone, calls: 1, sales: 1, balance: 130},
		{name: "complete on empty", steps: []step{{ev: ctl(checkout.ActComplete)}}, state: checkout.Idle,
			lastErr: checkout.ErrWrongState, lastSig: []checkout.SignalKind{checkout.SignalError}, balance: 120},
		{name: "cancel from member", steps: []step{{ev: item(pencil)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActCancel)}}, state: checkout.Idle,
			display: &checkout.Display{}, balance: 120},
		{name: "cancel from redeem", steps: []step{{ev: item(pencil)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActRedeem)}, {ev: ctl(checkout.ActCancel)}}, state: checkout.Idle, balance: 120},
		{name: "cancel when idle is an error", steps: []step{{ev: ctl(checkout.ActCancel)}}, state: checkout.Idle, lastErr: checkout.ErrWrongState, balance: 120},
		{name: "abandoned basket times out", steps: []step{{ev: item(pencil)}, {ev: checkout.Event{Kind: checkout.EvTick}, advance: 5 * time.Minute}}, state: checkout.Idle, balance: 120},
		{name: "basket kept before timeout", steps: []step{{ev: item(pencil)}, {ev: checkout.Event{Kind: checkout.EvTick}, advance: 4 * time.Minute}}, state: checkout.Basket, balance: 120},
		{name: "redeem shows affordable", steps: []step{{ev: item(pencil)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActRedeem)}}, state: checkout.Redeem,
			display: &checkout.Display{Line1: "1/1 Free coffee", Line2: "100 pts -0.50"}, balance: 120},
		{name: "buttons only: redeem, total picks, total completes", steps: []step{{ev: item(notebook)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActRedeem)}, {ev: ctl(checkout.ActComplete)}, {ev: ctl(checkout.ActComplete)}},
			state: checkout.Receipt, calls: 1, sales: 1, balance: 29},
		{name: "redeem and complete", steps: []step{{ev: item(notebook)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActRedeem)}, {ev: pick("coffee")}, {ev: ctl(checkout.ActComplete)}},
			state: checkout.Receipt, calls: 1, sales: 1, balance: 29, display: &checkout.Display{Line1: "+9 pts -100", Line2: "Balance 29"}},
		{name: "redemption beyond balance", steps: []step{{ev: item(notebook)}, {ev: card(danaCard)}, {ev: pick("bag")}}, state: checkout.Member,
			lastErr: checkout.ErrNotAffordable, lastSig: []checkout.SignalKind{checkout.SignalError}, balance: 120},
		{name: "second reward beyond balance", steps: []step{{ev: item(notebook)}, {ev: card(danaCard)}, {ev: pick("coffee")}, {ev: pick("coffee")}}, state: checkout.Member,
			lastErr: checkout.ErrNotAffordable, balance: 120},
		{name: "redeem without member", steps: []step{{ev: item(pencil)}, {ev: ctl(checkout.ActRedeem)}}, state: checkout.Basket, lastErr: checkout.ErrNoMember, balance: 120},
		{name: "item scan while choosing reward", steps: []step{{ev: item(pencil)}, {ev: card(danaCard)}, {ev: ctl(checkout.ActRedeem)}, {ev: item(pencil)}}, state: checkout.Redeem,
			lastErr: checkout.ErrWrongState, balance: 120},
		{name: "unknown reward", steps: []step{{ev: item(pencil)}, {ev: card(danaCard)}, {ev: pick("yacht")}}, state: checkout.Member, lastErr: checkout.ErrUnknownReward, balance: 120},
		{name: "pick in wrong state", steps: []step{{ev: pick("coffee")}}, state: checkout.Idle, lastErr: checkout.ErrWrongState, balance: 120},
		{name: "phone via api attaches and opens sale", steps: []step{{ev: checkout.Event{Kind: checkout.EvPhone, Code: "+972500000001"}}}, state: checkout.Member, balance: 120},
		{name: "sale without member", steps: []step{{ev: item(pencil)}, {ev: ctl(checkout.ActComplete)}}, state: checkout.Receipt,
			display: &checkout.Display{Line1: "Thank you", Line2: "Total 2.50"}, calls: 1, sales: 1, balance: 120},
		{name: "new item after receipt opens a new sale", steps: []step{{ev: item(pencil)}, {ev: ctl(checkout.ActComplete)}, {ev: item(pencil)}, {ev: ctl(checkout.ActComplete)}},
			state: checkout.Receipt, calls: 2, sales: 2, balance: 120},
		{name: "device reject keeps the basket", steps: []step{{ev: item(pencil)}, {ev: checkout.Event{Kind: checkout.EvReject, Code: "Not a member card"}}}, state: checkout.Basket,
			lastErr: checkout.ErrRejectedInput, lastSig: []checkout.SignalKind{checkout.SignalError}, display: &checkout.Display{Line1: "Not a member card", Line2: "Total 2.50"}, balance: 120},
		{name: "unknown action", steps: []step{{ev: ctl("dance")}}, state: checkout.Idle, lastErr: checkout.ErrInvalidEvent, balance: 120},
		{name: "bad quantity", steps: []step{{ev: checkout.Event{Kind: checkout.EvItem, Code: pencil, Quantity: -2}}}, state: checkout.Idle, lastErr: checkout.ErrInvalidEvent, balance: 120},
		{name: "other member while attached", steps: []step{{ev: item(pencil)}, {ev: card(danaCard)}, {ev: card("other")}}, state: checkout.Member, lastErr: checkout.ErrUnknownCard, balance: 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, f, clk := setup()
			var fx checkout.Effects
			for _, s := range tc.steps {
				clk.Advance(s.advance)
				fx = m.Handle(context.Background(), s.ev)
			}
			if m.State() != tc.state {
				t.Errorf("state = %s, want %s", m.State(), tc.state)
			}
			if tc.lastErr == nil && fx.Err != nil {
				t.Errorf("last event rejected: %v", fx.Err)
			}
			if tc.lastErr != nil && !errors.Is(fx.Err, tc.lastErr) {
				t.Errorf("err = %v, want %v", fx.Err, tc.lastErr)
			}
			if tc.lastSig != nil && !reflect.DeepEqual(fx.Signals, tc.lastSig) {
				t.Errorf("signals = %v, want %v", fx.Signals, tc.lastSig)
			}
			if tc.display != nil && (fx.Display == nil || *fx.Display != *tc.display) {
				t.Errorf("display = %+v, want %+v", fx.Display, tc.display)
			}
			if f.calls != tc.calls {
				t.Errorf("RecordSale calls = %d, want %d", f.calls, tc.calls)
			}
			if len(f.sales) != tc.sales {
				t.Errorf("sales = %d, want %d", len(f.sales), tc.sales)
			}
			if f.balances["m1"] != tc.balance {
				t.Errorf("balance = %d, want %d", f.balances["m1"], tc.balance)
			}
			if tc.viewState != "" && fx.View.State != tc.viewState {
				t.Errorf("view state = %q, want %q", fx.View.State, tc.viewState)
			}
		})
	}
}

func TestFailedCompleteRetriesSameID(t *testing.T) {
	m, f, _ := setup()
	ctx := context.Background()
	m.Handle(ctx, item(pencil))
	m.Handle(ctx, card(danaCard))
	f.fail = errors.New("disk hiccup")
	fx := m.Handle(ctx, ctl(checkout.ActComplete))
	if !errors.Is(fx.Err, checkout.ErrNotRecorded) || m.State() != checkout.Member {
		t.Fatalf("failed complete: err=%v state=%s", fx.Err, m.State())
	}
	if len(fx.Signals) != 1 || fx.Signals[0] != checkout.SignalError {
		t.Fatalf("signals = %v, want error", fx.Signals)
	}
	f.fail = nil
	fx = m.Handle(ctx, ctl(checkout.ActComplete))
	if fx.Err != nil || fx.Sale == nil || fx.Sale.Sale.ID != "r1-1" {
		t.Fatalf("retry: err=%v sale=%+v", fx.Err, fx.Sale)
	}
}

func TestInsufficientAtLedgerKeepsBasket(t *testing.T) {
	m, f, _ := setup()
	ctx := context.Background()
	m.Handle(ctx, item(notebook))
	m.Handle(ctx, card(danaCard))
	m.Handle(ctx, pick("coffee"))
	f.balances["m1"] = 10 // spent elsewhere meanwhile
	fx := m.Handle(ctx, ctl(checkout.ActComplete))
	if !errors.Is(fx.Err, ledger.ErrInsufficient) || len(f.sales) != 0 || m.State() != checkout.Member {
		t.Fatalf("err=%v sales=%d state=%s", fx.Err, len(f.sales), m.State())
	}
	if fx.Display == nil || fx.Display.Line1 != "Not enough points" {
		t.Fatalf("display = %+v", fx.Display)
	}
}

func TestOfflineSignals(t *testing.T) {
	f := newFake()
	online := true
	m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: f, Online: func() bool { return online }})
	ctx := context.Background()
	online = false
	fx := m.Handle(ctx, checkout.Event{Kind: checkout.EvOnline, Online: false})
	if !fx.View.Offline || len(fx.Signals) != 1 || fx.Signals[0] != checkout.SignalOffline {
		t.Fatalf("offline: %+v", fx)
	}
	m.Handle(ctx, item(pencil))
	fx = m.Handle(ctx, ctl(checkout.ActComplete))
	want := []checkout.SignalKind{checkout.SignalOK, checkout.SignalOffline}
	if !reflect.DeepEqual(fx.Signals, want) {
		t.Fatalf("signals = %v, want %v", fx.Signals, want)
	}
	online = true
	fx = m.Handle(ctx, checkout.Event{Kind: checkout.EvOnline, Online: true})
	if fx.View.Offline || len(fx.Signals) != 0 {
		t.Fatalf("online: %+v", fx)
	}
}

func TestViewForKiosk(t *testing.T) {
	m, _, _ := setup()
	ctx := context.Background()
	m.Handle(ctx, item(notebook))
	m.Handle(ctx, card(danaCard))
	fx := m.Handle(ctx, ctl(checkout.ActRedeem))
	v := fx.View
	if v.Member != "Dana Levi" || v.Language != "he" || v.Balance != 120 || v.NextReward != "Tote bag" || v.ToNext != 380 {
		t.Fatalf("view = %+v", v)
	}
	if len(v.Rewards) != 1 || !v.Rewards[0].Selected || v.Total != 1000 || len(v.Lines) != 1 || v.Lines[0].Name != "Notebook A5 with a long name" {
		t.Fatalf("view = %+v", v)
	}
	// Buttons only: TOTAL while choosing takes the reward shown, the next
	// TOTAL completes the sale with it.
	fx = m.Handle(ctx, ctl(checkout.ActComplete))
	if fx.Err != nil || m.State() != checkout.Member || len(fx.View.Rewards) != 1 || !fx.View.Rewards[0].Chosen || fx.Sale != nil {
		t.Fatalf("pick by TOTAL: %+v", fx)
	}
	fx = m.Handle(ctx, ctl(checkout.ActComplete))
	if fx.Err != nil || fx.Sale == nil || fx.Sale.Redeemed != 100 || m.State() != checkout.Receipt {
		t.Fatalf("complete with reward: %+v", fx)
	}
}

// TestCompleteReadsLinkState checks that the sale tells the ledger whether
// head office is reachable as it is at "complete", not as the last EvOnline
// said (the offline redemption limit depends on it).
func TestCompleteReadsLinkState(t *testing.T) {
	f := newFake()
	online := true
	var got []bool
	rec := recorderFunc(func(ctx context.Context, req ledger.SaleRequest) (ledger.SaleResult, error) {
		got = append(got, req.HQReachable)
		return f.RecordSale(ctx, req)
	})
	m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: rec, Online: func() bool { return online }})
	ctx := context.Background()
	for _, on := range []bool{true, false} {
		online = on
		m.Handle(ctx, item(pencil))
		if fx := m.Handle(ctx, ctl(checkout.ActComplete)); fx.Err != nil || fx.View.Offline == on {
			t.Fatalf("online=%v: %+v", on, fx)
		}
	}
	if !reflect.DeepEqual(got, []bool{true, false}) {
		t.Fatalf("HQReachable = %v", got)
	}
}

type recorderFunc func(context.Context, ledger.SaleRequest) (ledger.SaleResult, error)

func (f recorderFunc) RecordSale(ctx context.Context, req ledger.SaleRequest) (ledger.SaleResult, error) {
	return f(ctx, req)
}

func TestViewShowsTierGoal(t *testing.T) {
	f := newFake()
	m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: f,
		NextTier: func(mem ledger.Member) (checkout.TierGoal, bool) {
			return checkout.TierGoal{Name: "silver", Spend: 12345, Visits: 3}, mem.ID == "m1"
		}})
	fx := m.Handle(context.Background(), card(danaCard))
	if v := fx.View; v.NextTier != "silver" || v.TierSpend != 12345 || v.TierVisits != 3 {
		t.Fatalf("view = %+v", v)
	}
	fx = m.Handle(context.Background(), checkout.Event{Kind: checkout.EvTick})
	fx = m.Handle(context.Background(), ctl(checkout.ActCancel))
	if fx.View.NextTier != "" {
		t.Fatalf("tier goal kept after cancel: %+v", fx.View)
	}
}

func TestDeferredPromptAfterDisplay(t *testing.T) {
	f := newFake()
	var order []string
	m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: f, DeferPrompt: true,
		Prompt: func(ledger.Member, ledger.Points) string {
			order = append(order, "prompt")
			return "Birthday this week"
		}})
	d := checkout.NewDriver(m, func(_ context.Context, fx checkout.Effects) {
		if fx.Display != nil {
			order = append(order, "display")
		}
		order = append(order, "view:"+fx.View.Prompt)
	})
	fx := d.Do(context.Background(), card(danaCard))
	want := []string{"display", "view:", "prompt", "view:Birthday this week"}
	if !reflect.DeepEqual(order, want) || fx.View.Prompt != "Birthday this week" {
		t.Fatalf("order = %q, view prompt %q", order, fx.View.Prompt)
	}
	// The caller still gets what the display showed (POST /v1/scan answers
	// with it; it was dropped, and loyaltyctl scan printed "<nil>").
	if fx.Display == nil || fx.Display.Line1 != "Dana Levi" || len(fx.Signals) != 1 || fx.Signals[0] != checkout.SignalOK {
		t.Fatalf("effects returned after the deferred prompt: display %+v, signals %v", fx.Display, fx.Signals)
	}
}

// TestRewardWorthMoreThanTheBasket: a reward worth more than the basket is
// refused when picked after the items, and taken off at TOTAL when it was
// picked first; either way the checkout completes (before: "Total -0.92" and
// "Not recorded - retry" for ever).
func TestRewardWorthMoreThanTheBasket(t *testing.T) {
	t.Run("picked after the items", func(t *testing.T) {
		m, f, _ := setup()
		f.balances["m1"] = 1000
		ctx := context.Background()
		m.Handle(ctx, item(pencil)) // 2.50
		m.Handle(ctx, card(danaCard))
		fx := m.Handle(ctx, pick("bag")) // 3.00 off
		if !errors.Is(fx.Err, checkout.ErrRewardExceedsBasket) || fx.Display == nil || fx.Display.Line1 != "Reward > basket" {
			t.Fatalf("pick bag on a 2.50 basket: %+v", fx)
		}
		fx = m.Handle(ctx, ctl(checkout.ActComplete))
		if fx.Err != nil || fx.Sale == nil || len(fx.Sale.Sale.Lines) != 1 || f.calls != 1 {
			t.Fatalf("total after the refused reward: %+v (calls %d)", fx, f.calls)
		}
	})
	t.Run("picked before the items", func(t *testing.T) {
		m, f, _ := setup()
		f.balances["m1"] = 1000
		ctx := context.Background()
		if fx := m.Handle(ctx, checkout.Event{Kind: checkout.EvPhone, Code: "+972500000001"}); fx.Err != nil {
			t.Fatalf("phone: %v", fx.Err)
		}
		if fx := m.Handle(ctx, pick("bag")); fx.Err != nil {
			t.Fatalf("pick bag on an empty basket waits for TOTAL: %v", fx.Err)
		}
		if fx := m.Handle(ctx, item(pencil)); fx.View.Total != 0 {
			t.Fatalf("the view shows a total of %d, want 0 (never negative)", fx.View.Total)
		}
		fx := m.Handle(ctx, ctl(checkout.ActComplete))
		if !errors.Is(fx.Err, checkout.ErrRewardExceedsBasket) || f.calls != 0 {
			t.Fatalf("first total: %+v (calls %d)", fx, f.calls)
		}
		fx = m.Handle(ctx, ctl(checkout.ActComplete))
		if fx.Err != nil || fx.Sale == nil || f.calls != 1 || f.sales["r1-1"].Redeemed != 0 {
			t.Fatalf("second total records without the reward: %+v (calls %d)", fx, f.calls)
		}
	})
}

// TestStorageFailureTellsCashier: a sale the ledger refuses because the
// card failed (or is full) is not acknowledged, and the display says why
// in words the cashier can act on.
func TestStorageFailureTellsCashier(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("ledger commit: %w: input/output error", ledger.ErrStorage), "Storage fault - call"},
		{fmt.Errorf("ledger commit: %w", ledger.ErrNoSpace), "Disk full - call"},
	} {
		m, f, _ := setup()
		ctx := context.Background()
		m.Handle(ctx, item(notebook))
		f.fail = tc.err
		fx := m.Handle(ctx, ctl(checkout.ActComplete))
		if !errors.Is(fx.Err, checkout.ErrNotRecorded) || !errors.Is(fx.Err, tc.err) || fx.Sale != nil || m.State() == checkout.Receipt {
			t.Fatalf("%v: err=%v sale=%v state=%s", tc.err, fx.Err, fx.Sale, m.State())
		}
		if len(fx.Signals) != 1 || fx.Signals[0] != checkout.SignalError {
			t.Fatalf("%v: signals %v", tc.err, fx.Signals)
		}
		if fx.Display == nil || fx.Display.Line1 != tc.want {
			t.Fatalf("%v: display %+v, want %q", tc.err, fx.Display, tc.want)
		}
	}
}

// TestCardNumberRefused: a payment card number keyed in as an item, an
// item name or a member alias is refused, the basket unchanged, and the
// display does not show it.
func TestCardNumberRefused(t *testing.T) {
	for _, ev := range []checkout.Event{
		{Kind: checkout.EvItem, Code: "4111111111111111"},
		{Kind: checkout.EvManualItem, Code: "123", Name: "card 4111 1111 1111 1111", Price: 100, Quantity: 1},
		{Kind: checkout.EvCard, Code: "5555555555554444"},
		{Kind: checkout.EvPhone, Code: "378282246310005"},
	} {
		f := newFake()
		m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: f, Online: func() bool { return true }})
		m.Handle(context.Background(), item(pencil))
		before := m.Handle(context.Background(), checkout.Event{Kind: checkout.EvTick}).View
		fx := m.Handle(context.Background(), ev)
		if !errors.Is(fx.Err, checkout.ErrCardNumber) {
			t.Errorf("%+v: err %v", ev, fx.Err)
		}
		if fx.Display == nil || fx.Display.Line1 != "Bank card refused" {
			t.Errorf("%+v: display %+v", ev, fx.Display)
		}
		if fx.View.Total != before.Total || len(fx.View.Lines) != len(before.Lines) || fx.View.State != before.State {
			t.Errorf("%+v changed the basket: %+v -> %+v", ev, before, fx.View)
		}
	}
}

// TestBasketCap: the ledger takes at most 1000 lines per sale; the 1001st
// item is refused with a display message and the basket still completes.
func TestBasketCap(t *testing.T) {
	m, f, _ := setup()
	ctx := context.Background()
	for i := range checkout.MaxLines {
		if fx := m.Handle(ctx, item(pencil)); fx.Err != nil {
			t.Fatalf("item %d: %v", i, fx.Err)
		}
	}
	fx := m.Handle(ctx, item(pencil))
	if !errors.Is(fx.Err, checkout.ErrBasketFull) || fx.Display == nil || fx.Display.Line1 != "Basket full - total" ||
		!reflect.DeepEqual(fx.Signals, []checkout.SignalKind{checkout.SignalError}) || len(m.Snapshot().Lines) != checkout.MaxLines {
		t.Fatalf("1001st item: %+v", fx)
	}
	if fx := m.Handle(ctx, ctl(checkout.ActComplete)); fx.Err != nil || fx.Sale == nil || len(f.sales) != 1 {
		t.Fatalf("complete a full basket: %+v", fx)
	}
}

// TestUnknownItemMessage: the message fits the 20-column display, and a
// valid barcode that is also card-like is masked in the error (which is
// logged).
func TestUnknownItemMessage(t *testing.T) {
	m, _, _ := setup()
	fx := m.Handle(context.Background(), item("4000000000006"))
	if !errors.Is(fx.Err, checkout.ErrUnknownItem) || fx.Display == nil || fx.Display.Line1 != "Unknown item: key in" || len(fx.Display.Line1) > 20 {
		t.Fatalf("unknown item: %+v", fx)
	}
	if s := fx.Err.Error(); strings.Contains(s, "4000000000006") || !strings.Contains(s, "*********0006") {
		t.Fatalf("card-like code in the error: %q", s)
	}
	fx = m.Handle(context.Background(), item("9780201379624"))
	if !strings.Contains(fx.Err.Error(), "9780201379624") {
		t.Fatalf("an ordinary unknown code is named: %q", fx.Err)
	}
}

// TestViewSaysHowMuchIsBonus: the receipt's view splits the points earned
// into the bonus part, by reason (before: only "earned").
func TestViewSaysHowMuchIsBonus(t *testing.T) {
	f := newFake()
	rec := recorderFunc(func(ctx context.Context, req ledger.SaleRequest) (ledger.SaleResult, error) {
		res, err := f.RecordSale(ctx, req)
		res.Events = []ledger.PointEvent{
			{Kind: ledger.KindEarn, Points: 10, Line: 1},
			{Kind: ledger.KindBonus, Points: 50, Reason: rules.BonusFirstPurchase},
			{Kind: ledger.KindBonus, Points: 20, Reason: rules.BonusBirthday},
		}
		res.Earned = 80
		return res, err
	})
	m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: rec, Rewards: rewards})
	ctx := context.Background()
	m.Handle(ctx, item(notebook))
	if v := m.Handle(ctx, card(danaCard)).View; v.Bonus != 0 || v.Bonuses != nil {
		t.Fatalf("bonus before the sale: %+v", v)
	}
	fx := m.Handle(ctx, ctl(checkout.ActComplete))
	v := fx.View
	want := []checkout.BonusView{{Reason: "first-purchase", Points: 50}, {Reason: "birthday", Points: 20}}
	if v.State != "receipt" || v.Earned != 80 || v.Bonus != 70 || !reflect.DeepEqual(v.Bonuses, want) {
		t.Fatalf("receipt view: earned %d bonus %d %+v", v.Earned, v.Bonus, v.Bonuses)
	}
	// The pole display names the bonus apart from the usual points too.
	if fx.Display == nil || fx.Display.Line1 != "+10 +70 bonus" {
		t.Fatalf("receipt display: %+v, want line 1 %q", fx.Display, "+10 +70 bonus")
	}
}

// TestReceiptDisplayBonusSplit: the receipt's first display line splits
// the earned points into the usual part and the bonus, keeps the redeemed
// points, and falls back to the total where the split does not fit.
func TestReceiptDisplayBonusSplit(t *testing.T) {
	cases := []struct {
		name             string
		earned, redeemed ledger.Points
		bonus            []ledger.Points
		width            int
		want             string
	}{
		{name: "no bonus", earned: 12, want: "+12 pts"},
		{name: "welcome bonus", earned: 152, bonus: []ledger.Points{50}, want: "+102 +50 bonus"},
		{name: "all bonus", earned: 50, bonus: []ledger.Points{50}, want: "+50 bonus"},
		{name: "bonus and redemption", earned: 152, redeemed: 150, bonus: []ledger.Points{50}, want: "+102 +50 bonus -150"},
		{name: "two bonuses add up", earned: 90, bonus: []ledger.Points{50, 20}, want: "+20 +70 bonus"},
		{name: "too narrow: the total", earned: 152, redeemed: 150, bonus: []ledger.Points{50}, width: 16, want: "+152 pts -150"},
		{name: "no bonus, redemption", earned: 9, redeemed: 100, want: "+9 pts -100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			rec := recorderFunc(func(ctx context.Context, req ledger.SaleRequest) (ledger.SaleResult, error) {
				res, err := f.RecordSale(ctx, req)
				res.Events = []ledger.PointEvent{{Kind: ledger.KindEarn, Points: tc.earned, Line: 1}}
				for _, b := range tc.bonus {
					res.Events = append(res.Events, ledger.PointEvent{Kind: ledger.KindBonus, Points: b, Reason: rules.BonusFirstPurchase})
				}
				res.Earned, res.Redeemed = tc.earned, tc.redeemed
				return res, err
			})
			m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: rec, Rewards: rewards, Width: tc.width})
			ctx := context.Background()
			m.Handle(ctx, item(notebook))
			m.Handle(ctx, card(danaCard))
			fx := m.Handle(ctx, ctl(checkout.ActComplete))
			if fx.Err != nil || fx.Display == nil {
				t.Fatalf("complete: %v %+v", fx.Err, fx.Display)
			}
			if fx.Display.Line1 != tc.want {
				t.Errorf("line 1 = %q, want %q", fx.Display.Line1, tc.want)
			}
		})
	}
}

// TestViewSaysRewardIsAffordable: with enough points the view names the
// dearest reward the member can redeem now, counting the points already
// chosen for this sale (before: only "N more points for X").
func TestViewSaysRewardIsAffordable(t *testing.T) {
	cases := []struct {
		balance ledger.Points
		pick    bool
		want    string
	}{
		{balance: 99, want: ""},
		{balance: 100, want: "Free coffee"},
		{balance: 600, want: "Tote bag"},
		{balance: 150, pick: true, want: ""},            // 50 left after the coffee
		{balance: 600, pick: true, want: "Tote bag"},    // 500 left
		{balance: 550, pick: true, want: "Free coffee"}, // 450 left
	}
	for _, tc := range cases {
		m, f, _ := setup()
		f.balances["m1"] = tc.balance
		ctx := context.Background()
		m.Handle(ctx, item(notebook))
		v := m.Handle(ctx, card(danaCard)).View
		if tc.pick {
			fx := m.Handle(ctx, pick("coffee"))
			if fx.Err != nil {
				t.Fatal(fx.Err)
			}
			v = fx.View
		}
		if v.CanRedeem != tc.want {
			t.Errorf("balance %d, coffee chosen %v: can_redeem %q, want %q", tc.balance, tc.pick, v.CanRedeem, tc.want)
		}
	}
}

// TestViewShowsRewardAsLine: a reward chosen for this sale is in the view
// as a negative line, so lines plus discounts add up to the total while
// choosing, after choosing and on the receipt.
func TestViewShowsRewardAsLine(t *testing.T) {
	m, f, _ := setup()
	f.balances["m1"] = 300
	ctx := context.Background()
	m.Handle(ctx, item(notebook))
	m.Handle(ctx, card(danaCard))
	if v := m.Handle(ctx, ctl(checkout.ActRedeem)).View; v.Discounts != nil {
		t.Fatalf("discount before a reward was chosen: %+v", v.Discounts)
	}
	sum := func(v checkout.View) ledger.Money {
		var s ledger.Money
		for _, l := range v.Lines {
			s += l.Amount
		}
		for _, d := range v.Discounts {
			s += d.Amount
		}
		return s
	}
	coffee := checkout.DiscountView{RewardID: "coffee", Name: "Free coffee", Amount: -50}
	// pick a coffee; REDEEM lists the rewards again (choosing); TOTAL takes
	// a second coffee; TOTAL records the sale.
	steps := []struct {
		ev    checkout.Event
		state string
		want  []checkout.DiscountView
		total ledger.Money
	}{
		{pick("coffee"), "member", []checkout.DiscountView{coffee}, 950},
		{ctl(checkout.ActRedeem), "redeem", []checkout.DiscountView{coffee}, 950},
		{ctl(checkout.ActComplete), "member", []checkout.DiscountView{coffee, coffee}, 900},
		{ctl(checkout.ActComplete), "receipt", []checkout.DiscountView{coffee, coffee}, 900},
	}
	for _, st := range steps {
		fx := m.Handle(ctx, st.ev)
		v := fx.View
		if fx.Err != nil || v.State != st.state || !reflect.DeepEqual(v.Discounts, st.want) || sum(v) != v.Total || v.Total != st.total {
			t.Fatalf("after %+v: err %v, state %s, discounts %+v, lines+discounts %d, total %d", st.ev, fx.Err, v.State, v.Discounts, sum(v), v.Total)
		}
	}
}
