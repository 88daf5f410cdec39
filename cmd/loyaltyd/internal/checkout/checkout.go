package checkout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Sentinel errors. Every rejected event leaves the basket and the ledger as
// they were; Effects.Err wraps one of these.
var (
	ErrWrongState     = errors.New("checkout: not allowed in this state")
	ErrUnknownItem    = errors.New("checkout: unknown item")
	ErrUnknownCard    = errors.New("checkout: unknown member card")
	ErrEmptyBasket    = errors.New("checkout: basket is empty")
	ErrNoMember       = errors.New("checkout: no member attached")
	ErrNotAffordable  = errors.New("checkout: reward costs more than the balance")
	ErrUnknownReward  = errors.New("checkout: unknown reward")
	ErrAlreadyDone    = errors.New("checkout: sale already recorded")
	ErrNotRecorded    = errors.New("checkout: sale not recorded")
	ErrInvalidEvent   = errors.New("checkout: invalid event")
	ErrMemberMismatch = errors.New("checkout: another member is already attached")
	ErrRejectedInput  = errors.New("checkout: input refused by the device layer")
	// ErrCardNumber: an item code, name or member alias that is a payment
	// card number (device/cardsafe, the scanner's rules); refused without
	// repeating it, the basket unchanged.
	ErrCardNumber = errors.New("checkout: payment card number refused")
	// ErrRewardExceedsBasket: the rewards chosen are worth more than the
	// basket. Picking such a reward is refused; at TOTAL the rewards that do
	// not fit are taken off (the next TOTAL records the sale), so a checkout
	// can always be completed.
	ErrRewardExceedsBasket = errors.New("checkout: rewards worth more than the basket")
	// ErrBasketFull: the basket has MaxLines lines; the item is refused.
	ErrBasketFull = errors.New("checkout: basket is full")
)

// MaxLines is the most lines a basket takes: the ledger records at most
// 1000 lines per sale, so a longer basket could never complete.
const MaxLines = 1000

// State is a checkout state.
type State int

// The checkout states.
const (
	Idle    State = iota // nothing going on; a member card shows "my points"
	Basket               // items scanned, no member
	Member               // a member is attached (with or without items)
	Redeem               // choosing a reward to redeem
	Receipt              // sale recorded; the next scan starts a new sale
)

var (
	_ Catalog  = (*ledger.Ledger)(nil)
	_ Members  = (*ledger.Ledger)(nil)
	_ Recorder = (*ledger.Ledger)(nil)
)

var stateNames = [...]string{"idle", "basket", "member", "redeem", "receipt"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Item is a catalogue entry (the ledger holds the catalogue).
type Item = ledger.Item

// Catalog prices items; any error means the item is unknown
// (*ledger.Ledger is a Catalog).
type Catalog interface {
	Item(sku string) (Item, error)
}

// Members finds members and their balances (a *ledger.Ledger does this).
type Members interface {
	LookupAlias(alias string) (ledger.Member, error)
	Balance(memberID string) (ledger.Points, error)
}

// Recorder records a sale durably (a *ledger.Ledger does this).
type Recorder interface {
	RecordSale(ctx context.Context, req ledger.SaleRequest) (ledger.SaleResult, error)
}

// TierGoal is what a member still needs for the next tier: either the
// spend or the visits (rolling 12 months) gets them there.
type TierGoal struct {
	Name   string
	Spend  ledger.Money // 0 when the tier has no spend threshold
	Visits int          // 0 when the tier has no visits threshold
}

// PromptFunc returns the one short prompt that matters for this member now
// (birthday, first return visit, close to a reward), or "".
type PromptFunc func(m ledger.Member, balance ledger.Points) string

// Options configures New. Zero values mean the documented defaults.
type Options struct {
	Register string // register id, used in default sale ids; default "register"
	Catalog  Catalog
	Members  Members
	Recorder Recorder
	Clock    clock.Clock // the abandoned-basket timeout; default: the system clock
	// Rewards is the rewards catalogue, in the order shown to the customer.
	Rewards []rules.Reward
	// AbandonAfter cancels a basket with no activity for this long; default 10m.
	AbandonAfter time.Duration
	// ReceiptHold returns from receipt (and from "my points") to idle after
	// this long; default 30s.
	ReceiptHold time.Duration
	// CardFirstFor keeps a member card shown at idle (or on the receipt
	// of the previous sale) for the basket that follows: the first item
	// within this long opens the sale with the member attached; default
	// 2m. The customer who hands over the card first gets the points.
	CardFirstFor time.Duration
	// NewSaleID returns a fresh sale id; default "<register>-<16 hex>",
	// never one the ledger would refuse as carrying a card number.
	NewSaleID func() string
	// Prompt gives the cashier/customer prompt; default none.
	Prompt PromptFunc
	// NextTier says how far the member is from the next tier; default none.
	NextTier func(m ledger.Member) (TierGoal, bool)
	// PromptEvery is how long the customer display shows the member's
	// name and balance, then the prompt (word-wrapped over both lines),
	// in turn, while the member is on the display and nothing else
	// happens; default 3s. The balance always comes first.
	PromptEvery time.Duration
	// DeferPrompt leaves Prompt and NextTier (which read the member's
	// history) out of Handle; the Driver runs them after the display is
	// written, so the customer sees the balance first.
	DeferPrompt bool
	// Online reports whether head office is reachable; default always true.
	Online func() bool
	// Width is the customer display width; default 20.
	Width int
	// Decimals is the number of minor-unit digits of the currency; default 2.
	Decimals int
}

// Machine is the checkout state machine. It is not safe for concurrent use:
// the daemon serialises events and applies each Effects before the next.
type Machine struct {
	o Options

	state     State
	saleID    string
	lines     []ledger.Line
	names     map[string]string // sku -> display name
	member    *ledger.Member
	balance   ledger.Points
	redeem    []rules.Reward // chosen rewards
	cursor    int            // highlighted affordable reward in Redeem
	last      time.Time      // last activity, for timeouts
	lastSale  *ledger.SaleResult
	prompt    string
	tierGoal  *TierGoal
	enrich    bool      // prompt and tier goal still to be worked out
	alt       bool      // the display shows the member: alternate with the prompt
	altAt     time.Time // when the display last switched
	altPrompt bool      // the prompt is on the display (else the balance)
	message   string
	showing   bool           // idle but showing "my points"
	held      *ledger.Member // a card shown at idle, kept for the next basket
	heldAt    time.Time
	offline   bool
	completed int
}

// New returns a machine in the idle state.
func New(o Options) *Machine {
	if o.Register == "" {
		o.Register = "register"
	}
	o.Clock = clock.Or(o.Clock)
	if o.AbandonAfter <= 0 {
		o.AbandonAfter = 10 * time.Minute
	}
	if o.ReceiptHold <= 0 {
		o.ReceiptHold = 30 * time.Second
	}
	if o.PromptEvery <= 0 {
		o.PromptEvery = 3 * time.Second
	}
	if o.CardFirstFor <= 0 {
		o.CardFirstFor = 2 * time.Minute
	}
	if o.NewSaleID == nil {
		reg := o.Register
		o.NewSaleID = func() string { return randomSaleID(reg, func(b []byte) { _, _ = rand.Read(b) }) }
	}
	if o.Online == nil {
		o.Online = func() bool { return true }
	}
	if o.Width <= 0 {
		o.Width = 20
	}
	if o.Decimals <= 0 {
		o.Decimals = 2
	}
	m := &Machine{o: o, names: map[string]string{}}
	m.last = clock.Wall(o.Clock)
	m.offline = !o.Online()
	return m
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// EventKind names an input event.
type EventKind int

// Event kinds.
const (
	EvItem       EventKind = iota + 1 // Code is a sku; Quantity defaults to 1
	EvCard                            // Code is a member card / alias (scan, magstripe, Wiegand)
	EvPhone                           // Code is a phone number (API): attaches in any sale state
	EvControl                         // Action is a control code or button action
	EvPickReward                      // Code is a reward id
	EvManualItem                      // the cashier keyed an unknown item: Code, Price, Name
	EvTick                            // time passes: timeouts
	EvOnline                          // Online tells whether head office is reachable
	EvReject                          // a device refused an input; Code is a fixed message (never the input)
)

// Actions carried by EvControl (from control codes or buttons).
const (
	ActComplete = "complete"
	ActCancel   = "cancel"
	ActRedeem   = "redeem"
	ActPoints   = "points" // "show my points" button: shows the attached member again
)

// Event is one input to the machine.
type Event struct {
	Kind     EventKind
	Code     string
	Action   string
	Quantity int64
	Price    ledger.Money
	Name     string
	// WeightGrams, on EvItem, says the article was weighed (a GS1 in-store
	// label with an embedded weight): the catalogue price is per kilogram
	// and the line is priced with WeightPrice, quantity 1.
	WeightGrams int64
	Online      bool
	Source      string // which device or "api", for logs
}

// SignalKind is a cashier signal (buzzer and LEDs).
type SignalKind string

// Signals.
const (
	SignalOK      SignalKind = "ok"
	SignalError   SignalKind = "error"
	SignalOffline SignalKind = "offline"
)

// Display is the text for the 2-line customer display, in UTF-8; the
// display driver maps it to its code page and pads it.
type Display struct {
	Line1, Line2 string
}

// RewardView is one reward as the customer sees it.
type RewardView struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Points   int64  `json:"points"`
	Discount int64  `json:"discount"`
	Selected bool   `json:"selected,omitempty"`
	Chosen   bool   `json:"chosen,omitempty"`
}

// LineView is one basket line as shown.
type LineView struct {
	SKU      string       `json:"sku"`
	Name     string       `json:"name"`
	Quantity int64        `json:"quantity"`
	Amount   ledger.Money `json:"amount"`
}

// BonusView is one bonus within the points of the recorded sale.
type BonusView struct {
	Reason string `json:"reason"` // the ledger's reason: "first-purchase", "birthday", "campaign:<id>", ...
	Points int64  `json:"points"`
}

// DiscountView is a reward chosen for this sale, shown as a basket line
// with its negative amount so that lines and discounts add up to the total.
type DiscountView struct {
	RewardID string       `json:"reward_id"`
	Name     string       `json:"name"`
	Amount   ledger.Money `json:"amount"` // negative
}

// View is everything the kiosk page shows; it is sent whole on each change.
type View struct {
	State      string         `json:"state"`
	SaleID     string         `json:"sale_id,omitempty"`
	Member     string         `json:"member,omitempty"` // name
	MemberID   string         `json:"member_id,omitempty"`
	Language   string         `json:"language,omitempty"`
	Balance    int64          `json:"balance"`
	Earned     int64          `json:"earned"`
	Redeemed   int64          `json:"redeemed"`
	Bonus      int64          `json:"bonus,omitempty"`      // the part of Earned that is bonus
	Bonuses    []BonusView    `json:"bonuses,omitempty"`    // that part by reason
	CanRedeem  string         `json:"can_redeem,omitempty"` // a reward the member can afford now (the dearest)
	NextReward string         `json:"next_reward,omitempty"`
	ToNext     int64          `json:"to_next"` // points still missing for NextReward
	Tier       string         `json:"tier,omitempty"`
	NextTier   string         `json:"next_tier,omitempty"`
	TierSpend  ledger.Money   `json:"tier_spend_to_go,omitempty"`  // spend still missing for NextTier
	TierVisits int            `json:"tier_visits_to_go,omitempty"` // or visits still missing
	Prompt     string         `json:"prompt,omitempty"`
	Message    string         `json:"message,omitempty"`
	Lines      []LineView     `json:"lines,omitempty"`
	Discounts  []DiscountView `json:"discounts,omitempty"` // chosen rewards as negative lines
	Total      ledger.Money   `json:"total"`
	Rewards    []RewardView   `json:"rewards,omitempty"`
	Offline    bool           `json:"offline"`
	Completed  int            `json:"completed"`
}

// Effects is what one event produced.
type Effects struct {
	Display *Display           // nil: leave the display as it is
	Signals []SignalKind       // in order
	View    View               // the full view after the event
	Sale    *ledger.SaleResult // set when this event recorded (or replayed) a sale
	Err     error              // why the event was rejected; nil when accepted
}

// Handle applies one event and returns its effects. A rejected event leaves
// the machine as it was (apart from the timestamp of last activity) and
// signals an error.
func (m *Machine) Handle(ctx context.Context, ev Event) Effects {
	now := clock.Wall(m.o.Clock) // durations only: the trust flag does not matter
	var fx Effects
	switch ev.Kind {
	case EvTick:
		fx = m.tick(now)
		fx.View = m.view()
		return fx
	case EvOnline:
		was := m.offline
		m.offline = !ev.Online
		if m.offline && !was {
			fx.Signals = append(fx.Signals, SignalOffline)
		}
		fx.View = m.view()
		return fx
	}
	m.last = now
	m.message = ""
	m.alt = false // another event takes the display; card() restarts it
	if fx, bad := refuseCard(m, ev); bad {
		fx.View = m.view()
		return fx
	}
	switch ev.Kind {
	case EvItem:
		fx = m.item(ev)
	case EvManualItem:
		fx = m.manualItem(ev)
	case EvCard, EvPhone:
		fx = m.card(ev)
	case EvControl:
		switch ev.Action {
		case ActComplete:
			fx = m.complete(ctx)
		case ActCancel:
			fx = m.cancel()
		case ActRedeem:
			fx = m.startRedeem()
		case ActPoints:
			fx = m.showPoints()
		default:
			fx = m.reject(fmt.Errorf("%w: unknown action %q", ErrInvalidEvent, ev.Action), "Unknown key")
		}
	case EvPickReward:
		fx = m.pick(ev.Code)
	case EvReject:
		// The basket stays as it was; the customer and cashier see why.
		fx = m.reject(fmt.Errorf("%w: %s", ErrRejectedInput, ev.Code), ev.Code)
	default:
		fx = m.reject(fmt.Errorf("%w: kind %d", ErrInvalidEvent, ev.Kind), "Unknown input")
	}
	fx.View = m.view()
	return fx
}

func (m *Machine) reject(err error, msg string) Effects {
	m.message = msg
	return Effects{Err: err, Signals: []SignalKind{SignalError}, Display: m.errDisplay(msg)}
}

func (m *Machine) errDisplay(msg string) *Display {
	return &Display{Line1: m.clip(msg), Line2: m.clip(m.totalText())}
}

func (m *Machine) tick(now time.Time) Effects {
	idle := now.Sub(m.last)
	switch {
	case (m.state == Basket || m.state == Member || m.state == Redeem) && idle >= m.o.AbandonAfter:
		m.reset()
		m.message = "Basket abandoned"
		return Effects{Display: &Display{}, Signals: nil}
	case (m.state == Receipt || m.showing) && idle >= m.o.ReceiptHold:
		held, at := m.held, m.heldAt
		m.reset()
		m.held, m.heldAt = held, at // the card still counts for the next basket
		return Effects{Display: &Display{}}
	case m.held != nil && now.Sub(m.heldAt) > m.o.CardFirstFor:
		m.held = nil
		return Effects{}
	case m.alt && m.prompt != "" && m.member != nil && now.Sub(m.altAt) >= m.o.PromptEvery:
		m.altAt, m.altPrompt = now, !m.altPrompt
		if m.altPrompt {
			return Effects{Display: m.promptDisplay()}
		}
		return Effects{Display: m.memberDisplay()}
	}
	return Effects{}
}

// promptDisplay is the prompt word-wrapped over the display's two lines,
// each clipped to the width (the display driver maps the code page).
func (m *Machine) promptDisplay() *Display {
	var lines [2][]string
	n, used := 0, 0
	for _, w := range strings.Fields(m.prompt) {
		wl := utf8.RuneCountInString(w)
		if used > 0 && used+1+wl > m.o.Width && n == 0 {
			n, used = 1, 0
		}
		if used > 0 {
			used++
		}
		used += wl
		lines[n] = append(lines[n], w)
	}
	return &Display{Line1: m.clip(strings.Join(lines[0], " ")), Line2: m.clip(strings.Join(lines[1], " "))}
}

func (m *Machine) reset() {
	m.state = Idle
	m.saleID = ""
	m.lines = nil
	m.names = map[string]string{}
	m.member = nil
	m.balance = 0
	m.redeem = nil
	m.cursor = 0
	m.lastSale = nil
	m.prompt = ""
	m.tierGoal = nil
	m.enrich = false
	m.showing = false
	m.held = nil
	m.alt, m.altPrompt = false, false
}

// openSale starts a new sale from idle or receipt. A member card shown
// at idle within CardFirstFor is attached to it (reports true).
func (m *Machine) openSale() bool {
	if m.state != Idle && m.state != Receipt {
		return false
	}
	held, at := m.held, m.heldAt
	m.reset()
	m.saleID = m.o.NewSaleID()
	m.state = Basket
	if held == nil || clock.Wall(m.o.Clock).Sub(at) > m.o.CardFirstFor {
		return false
	}
	bal, err := m.o.Members.Balance(held.ID)
	if err != nil {
		return false // the sale goes on without the member; the cashier can scan the card again
	}
	m.member, m.balance, m.state = held, bal, Member
	m.message = "Card kept for this sale"
	return true
}

func (m *Machine) item(ev Event) Effects {
	if m.state == Redeem {
		return m.reject(fmt.Errorf("%w: item scan while choosing a reward", ErrWrongState), "Finish reward first")
	}
	code := strings.TrimSpace(ev.Code)
	if code == "" {
		return m.reject(fmt.Errorf("%w: empty sku", ErrInvalidEvent), "Empty code")
	}
	qty := ev.Quantity
	if qty == 0 {
		qty = 1
	}
	if qty < 0 || qty > 9999 {
		return m.reject(fmt.Errorf("%w: quantity %d", ErrInvalidEvent, qty), "Bad quantity")
	}
	if ev.WeightGrams < 0 || (ev.WeightGrams > 0 && qty != 1) {
		return m.reject(fmt.Errorf("%w: weight %d g, quantity %d", ErrInvalidEvent, ev.WeightGrams, qty), "Bad weight")
	}
	it, err := m.o.Catalog.Item(code)
	if err != nil {
		if cardsafe.IsPAN(code) {
			// a valid barcode that is also card-like: the error reaches
			// the log, so only the last four digits (the ledger's own
			// error, which quotes the code, is left out)
			return m.reject(fmt.Errorf("%w: %s", ErrUnknownItem, cardsafe.Mask(code)), "Unknown item: key in")
		}
		return m.reject(fmt.Errorf("%w: %s: %w", ErrUnknownItem, code, err), "Unknown item: key in")
	}
	if ev.WeightGrams > 0 {
		p, err := WeightPrice(it.Price, ev.WeightGrams)
		if err != nil {
			return m.reject(fmt.Errorf("%w: %s: %w", ErrInvalidEvent, code, err), "Bad weight")
		}
		it.Price = p
	}
	return m.addLine(it, qty)
}

// ErrWeight reports a weight price that cannot be worked out: a weight
// or unit price that is not positive, or a product too large.
var ErrWeight = errors.New("no price for this weight")

// WeightPrice is the price of grams of an article sold at perKg minor
// units per kilogram: perKg × grams / 1000, rounded half up to a whole
// minor unit (1.234 kg at 9.99/kg = 12.32766 -> 12.33), and never below 1
// minor unit for a positive weight (a label is never free).
func WeightPrice(perKg ledger.Money, grams int64) (ledger.Money, error) {
	if perKg <= 0 || grams <= 0 {
		return 0, fmt.Errorf("%w: %d per kg, %d g", ErrWeight, perKg, grams)
	}
	hi, lo := bits.Mul64(uint64(perKg), uint64(grams))
	if hi != 0 || lo > math.MaxInt64-500 {
		return 0, fmt.Errorf("%w: %d per kg × %d g is too large", ErrWeight, perKg, grams)
	}
	return ledger.Money(max((int64(lo)+500)/1000, 1)), nil
}

func (m *Machine) manualItem(ev Event) Effects {
	if m.state == Redeem {
		return m.reject(fmt.Errorf("%w: item while choosing a reward", ErrWrongState), "Finish reward first")
	}
	code := strings.TrimSpace(ev.Code)
	if code == "" || ev.Price <= 0 || ev.Quantity < 0 || ev.Quantity > 9999 {
		return m.reject(fmt.Errorf("%w: manual item needs a code and a positive price", ErrInvalidEvent), "Bad item")
	}
	qty := ev.Quantity
	if qty == 0 {
		qty = 1
	}
	name := ev.Name
	if name == "" {
		name = code
	}
	return m.addLine(Item{SKU: code, Name: name, Price: ev.Price}, qty)
}

func (m *Machine) addLine(it Item, qty int64) Effects {
	if len(m.lines) >= MaxLines && m.state != Idle && m.state != Receipt {
		return m.reject(fmt.Errorf("%w: %d lines", ErrBasketFull, len(m.lines)), "Basket full - total")
	}
	kept := false
	if m.state == Receipt || m.state == Idle {
		kept = m.openSale()
	}
	m.lines = append(m.lines, ledger.Line{No: len(m.lines) + 1, SKU: it.SKU, Quantity: qty, UnitPrice: it.Price, Category: it.Category})
	m.names[it.SKU] = it.Name
	if kept {
		// the customer sees the card was taken for this sale: name,
		// points and the total
		m.setPrompt(*m.member, m.balance)
		m.alt, m.altAt, m.altPrompt = true, clock.Wall(m.o.Clock), false
		return Effects{Display: m.memberDisplay()}
	}
	return Effects{Display: &Display{Line1: m.clip(it.Name), Line2: m.clip(m.totalText())}}
}

// membersByID is Members that also finds a member by id (a
// *ledger.Ledger does).
type membersByID interface {
	Member(id string) (ledger.Member, error)
}

func (m *Machine) lookup(code string) (ledger.Member, ledger.Points, error) {
	// The member id, or any alias (docs/api.md: wherever a member is
	// named); the id first, as the API's paths do: it is local, while an
	// unknown alias may be asked of head office.
	mem, err := ledger.Member{}, ledger.ErrUnknownMember
	if byID, ok := m.o.Members.(membersByID); ok {
		mem, err = byID.Member(code)
	}
	if errors.Is(err, ledger.ErrUnknownMember) {
		mem, err = m.o.Members.LookupAlias(code)
	}
	if err != nil {
		return ledger.Member{}, 0, fmt.Errorf("%w: %w", ErrUnknownCard, err)
	}
	bal, err := m.o.Members.Balance(mem.ID)
	if err != nil {
		return ledger.Member{}, 0, fmt.Errorf("balance of %s: %w", mem.ID, err)
	}
	return mem, bal, nil
}

func (m *Machine) card(ev Event) Effects {
	code := strings.TrimSpace(ev.Code)
	if code == "" {
		return m.reject(fmt.Errorf("%w: empty card", ErrInvalidEvent), "Empty card")
	}
	if m.state == Redeem {
		return m.reject(fmt.Errorf("%w: card scan while choosing a reward", ErrWrongState), "Finish reward first")
	}
	mem, bal, err := m.lookup(code)
	if err != nil {
		return m.reject(err, "Card not known")
	}
	if (m.state == Idle || m.state == Receipt) && ev.Kind == EvCard {
		// "check my points": show and fall back to idle after ReceiptHold;
		// the card is kept for the basket that follows (CardFirstFor).
		m.reset()
		m.member, m.balance, m.showing = &mem, bal, true
		m.held, m.heldAt = &mem, clock.Wall(m.o.Clock)
		m.setPrompt(mem, bal)
		m.alt, m.altAt, m.altPrompt = true, clock.Wall(m.o.Clock), false
		return Effects{Display: m.memberDisplay(), Signals: []SignalKind{SignalOK}}
	}
	if m.member != nil && m.member.ID != mem.ID && (m.state == Member) {
		return m.reject(fmt.Errorf("%w: %s", ErrMemberMismatch, m.member.ID), "Other member attached")
	}
	if m.state == Idle || m.state == Receipt {
		m.openSale() // phone number through the API starts a sale
	}
	m.member, m.balance, m.state = &mem, bal, Member
	m.setPrompt(mem, bal)
	m.alt, m.altAt, m.altPrompt = true, clock.Wall(m.o.Clock), false
	return Effects{Display: m.memberDisplay(), Signals: []SignalKind{SignalOK}}
}

// setPrompt works out the prompt and tier goal now, or, with DeferPrompt,
// leaves it for Enrich so the display is written first.
func (m *Machine) setPrompt(mem ledger.Member, bal ledger.Points) {
	m.prompt, m.tierGoal = "", nil
	if m.o.DeferPrompt {
		m.enrich = true
		return
	}
	m.prompt = m.promptFor(mem, bal)
}

// Enrich computes a deferred prompt and tier goal (see Options.DeferPrompt)
// and reports whether the view changed.
func (m *Machine) Enrich() bool {
	if !m.enrich {
		return false
	}
	m.enrich = false
	if m.member == nil {
		return false
	}
	m.prompt = m.promptFor(*m.member, m.balance)
	return m.prompt != "" || m.tierGoal != nil
}

func (m *Machine) promptFor(mem ledger.Member, bal ledger.Points) string {
	m.tierGoal = nil
	if m.o.NextTier != nil {
		if g, ok := m.o.NextTier(mem); ok {
			m.tierGoal = &g
		}
	}
	if m.o.Prompt == nil {
		return ""
	}
	return m.o.Prompt(mem, bal)
}

func (m *Machine) showPoints() Effects {
	if m.member == nil {
		return m.reject(fmt.Errorf("%w: show points", ErrNoMember), "Scan member card")
	}
	return Effects{Display: m.memberDisplay()}
}

// affordable lists the rewards the member can still afford given what is
// already chosen for this sale.
func (m *Machine) affordable() []rules.Reward {
	left := int64(m.balance) - int64(m.chosenPoints())
	var out []rules.Reward
	for _, r := range m.o.Rewards {
		if r.Points <= left {
			out = append(out, r)
		}
	}
	return out
}

// basketAmount is what the lines come to before rewards.
func (m *Machine) basketAmount() ledger.Money {
	var total ledger.Money
	for _, l := range m.lines {
		total += l.Amount()
	}
	return total
}

// chosenDiscount is what the chosen rewards take off.
func (m *Machine) chosenDiscount() ledger.Money {
	var d ledger.Money
	for _, r := range m.redeem {
		d += ledger.Money(r.Discount)
	}
	return d
}

func (m *Machine) chosenPoints() ledger.Points {
	var p ledger.Points
	for _, r := range m.redeem {
		p += ledger.Points(r.Points)
	}
	return p
}

func (m *Machine) startRedeem() Effects {
	switch m.state {
	case Member:
	case Redeem:
		// pressing redeem again moves to the next affordable reward
		aff := m.affordable()
		if len(aff) > 0 {
			m.cursor = (m.cursor + 1) % len(aff)
		}
		return Effects{Display: m.redeemDisplay()}
	case Basket, Idle, Receipt:
		return m.reject(fmt.Errorf("%w: redeem without a member", ErrNoMember), "Scan member card")
	}
	if len(m.affordable()) == 0 {
		return m.reject(fmt.Errorf("%w: no reward within %d points", ErrNotAffordable, m.balance-m.chosenPoints()), "No reward yet")
	}
	m.state, m.cursor = Redeem, 0
	return Effects{Display: m.redeemDisplay()}
}

func (m *Machine) pick(id string) Effects {
	if m.state != Redeem && m.state != Member {
		return m.reject(fmt.Errorf("%w: pick a reward in state %s", ErrWrongState, m.state), "Scan member card")
	}
	var r rules.Reward
	found := false
	for _, x := range m.o.Rewards {
		if x.ID == id {
			r, found = x, true
		}
	}
	if !found {
		return m.reject(fmt.Errorf("%w: %q", ErrUnknownReward, id), "Unknown reward")
	}
	if ledger.Points(r.Points) > m.balance-m.chosenPoints() {
		return m.reject(fmt.Errorf("%w: %s needs %d, %d left", ErrNotAffordable, r.ID, r.Points, m.balance-m.chosenPoints()), "Not enough points")
	}
	// With items in the basket a reward worth more than it is refused
	// now; with none yet (card first) it waits for TOTAL to be checked.
	if basket := m.basketAmount(); len(m.lines) > 0 && m.chosenDiscount()+ledger.Money(r.Discount) > basket {
		m.state = Member
		return m.reject(fmt.Errorf("%w: %s is worth %d, the basket %d", ErrRewardExceedsBasket, r.ID, r.Discount, basket-m.chosenDiscount()), "Reward > basket")
	}
	m.redeem = append(m.redeem, r)
	m.state = Member
	return Effects{Display: &Display{Line1: m.clip(r.Name), Line2: m.clip(fmt.Sprintf("-%d pts", r.Points))}, Signals: []SignalKind{SignalOK}}
}

func (m *Machine) cancel() Effects {
	if m.state == Idle && !m.showing {
		return m.reject(fmt.Errorf("%w: nothing to cancel", ErrWrongState), "Nothing to cancel")
	}
	m.reset()
	m.message = "Cancelled"
	return Effects{Display: &Display{}}
}

func (m *Machine) saleRequest() ledger.SaleRequest {
	req := ledger.SaleRequest{ID: m.saleID, Lines: append([]ledger.Line(nil), m.lines...), HQReachable: !m.offline}
	if m.member != nil {
		req.MemberID = m.member.ID
	}
	total := m.basketAmount()
	for _, r := range m.redeem {
		req.Redemptions = append(req.Redemptions, ledger.RedeemRequest{RewardID: r.ID})
		total -= ledger.Money(r.Discount)
	}
	// A reward that pays the whole basket leaves nothing to tender.
	if total > 0 {
		req.Tenders = []ledger.Tender{{Kind: "cash", Amount: total}}
	}
	return req
}

func (m *Machine) complete(ctx context.Context) Effects {
	switch m.state {
	case Receipt:
		// A double-pressed complete: the sale is already recorded; say so,
		// record nothing.
		return Effects{Err: fmt.Errorf("%w: %s", ErrAlreadyDone, m.saleID), Display: m.receiptDisplay()}
	case Redeem:
		// With buttons only: REDEEM shows (and steps through) the
		// affordable rewards, TOTAL takes the one shown; the next TOTAL
		// completes the sale.
		aff := m.affordable()
		if len(aff) == 0 {
			m.state = Member
			return m.reject(fmt.Errorf("%w: no reward left to pick", ErrNotAffordable), "No reward yet")
		}
		return m.pick(aff[m.cursor%len(aff)].ID)
	case Idle:
		return m.reject(fmt.Errorf("%w: complete in state %s", ErrWrongState, m.state), "Nothing to complete")
	}
	if len(m.lines) == 0 {
		return m.reject(fmt.Errorf("%w: complete", ErrEmptyBasket), "Basket is empty")
	}
	// Rewards chosen before the items (or items voided since) may be worth
	// more than the basket: take off the last chosen until they fit and
	// say so; the next TOTAL records the sale.
	if basket := m.basketAmount(); m.chosenDiscount() > basket {
		var dropped []string
		for len(m.redeem) > 0 && m.chosenDiscount() > basket {
			dropped = append(dropped, m.redeem[len(m.redeem)-1].ID)
			m.redeem = m.redeem[:len(m.redeem)-1]
		}
		return m.reject(fmt.Errorf("%w: %s taken off (basket %d)", ErrRewardExceedsBasket, strings.Join(dropped, ", "), basket), "Reward > basket")
	}
	// The link state decides the ledger's offline redemption limit: read
	// it now rather than trust the last EvOnline.
	m.offline = !m.o.Online()
	res, err := m.o.Recorder.RecordSale(ctx, m.saleRequest())
	if err != nil {
		msg := "Not recorded - retry"
		switch {
		case errors.Is(err, ledger.ErrInsufficient):
			msg = "Not enough points"
		case errors.Is(err, ledger.ErrOfflineLimit):
			msg = "Offline: no redeem"
		case errors.Is(err, ledger.ErrConflict):
			msg = "Sale id used - cancel"
		case errors.Is(err, ledger.ErrRewardExceedsSale):
			msg = "Reward > basket"
		case errors.Is(err, ledger.ErrUnknownReward):
			msg = "Unknown reward"
		case errors.Is(err, ledger.ErrStorage):
			msg = "Storage fault - call"
		case errors.Is(err, ledger.ErrNoSpace):
			msg = "Disk full - call"
		}
		return m.reject(fmt.Errorf("%w: %w", ErrNotRecorded, err), msg)
	}
	m.lastSale = &res
	m.state = Receipt
	m.completed++
	if m.member != nil {
		m.balance = res.Balance
	}
	fx := Effects{Sale: &res, Display: m.receiptDisplay(), Signals: []SignalKind{SignalOK}}
	if m.offline {
		fx.Signals = append(fx.Signals, SignalOffline)
	}
	return fx
}

// Money formats minor units with the configured decimals.
func (m *Machine) money(v ledger.Money) string {
	neg := v < 0
	if neg {
		v = -v
	}
	div := ledger.Money(1)
	for i := 0; i < m.o.Decimals; i++ {
		div *= 10
	}
	s := fmt.Sprintf("%d.%0*d", v/div, m.o.Decimals, v%div)
	if neg {
		s = "-" + s
	}
	return s
}

// total is what is left to pay: never below zero (rewards worth more than
// the basket are taken off at TOTAL, see ErrRewardExceedsBasket).
func (m *Machine) total() ledger.Money {
	return max(m.basketAmount()-m.chosenDiscount(), 0)
}

func (m *Machine) totalText() string {
	if len(m.lines) == 0 {
		return ""
	}
	return "Total " + m.money(m.total())
}

func (m *Machine) next() (rules.Reward, int64, bool) {
	var best rules.Reward
	found := false
	for _, r := range m.o.Rewards {
		if ledger.Points(r.Points) > m.balance && (!found || r.Points < best.Points) {
			best, found = r, true
		}
	}
	return best, best.Points - int64(m.balance), found
}

// canRedeem is the dearest reward the member can afford now with the
// points not yet chosen for this sale (on the receipt: the new balance).
func (m *Machine) canRedeem() (rules.Reward, bool) {
	left := m.balance
	if m.state != Receipt {
		left -= m.chosenPoints()
	}
	var best rules.Reward
	found := false
	for _, r := range m.o.Rewards {
		if ledger.Points(r.Points) <= left && (!found || r.Points > best.Points) {
			best, found = r, true
		}
	}
	return best, found
}

func (m *Machine) memberDisplay() *Display {
	name := m.member.Name
	if name == "" {
		name = "Member " + m.member.ID
	}
	l2 := fmt.Sprintf("%d pts", m.balance)
	if _, d, ok := m.next(); ok {
		l2 += fmt.Sprintf(" %d to go", d)
	}
	if len(m.lines) > 0 && m.state != Idle {
		l2 = fmt.Sprintf("%d pts %s", m.balance, m.money(m.total()))
	}
	return &Display{Line1: m.clip(name), Line2: m.clip(l2)}
}

func (m *Machine) redeemDisplay() *Display {
	aff := m.affordable()
	if len(aff) == 0 {
		return &Display{Line1: "No reward", Line2: m.clip(fmt.Sprintf("%d pts", m.balance))}
	}
	r := aff[m.cursor%len(aff)]
	return &Display{Line1: m.clip(fmt.Sprintf("%d/%d %s", m.cursor%len(aff)+1, len(aff), r.Name)), Line2: m.clip(fmt.Sprintf("%d pts -%s", r.Points, m.money(ledger.Money(r.Discount))))}
}

func (m *Machine) receiptDisplay() *Display {
	if m.lastSale == nil {
		return &Display{Line1: "Thank you"}
	}
	r := m.lastSale
	if m.member == nil {
		return &Display{Line1: "Thank you", Line2: m.clip("Total " + m.money(r.Sale.Total))}
	}
	return &Display{Line1: m.clip(m.earnedText(r)), Line2: m.clip(fmt.Sprintf("Balance %d", r.Balance))}
}

// earnedText is the receipt's first display line: the points earned, the
// bonus part named apart ("+102 +50 bonus", so a customer does not read a
// welcome bonus as the usual rate), and the points redeemed. Where the
// split does not fit the display's width, the total alone ("+152 pts").
func (m *Machine) earnedText(r *ledger.SaleResult) string {
	var redeemed string
	if r.Redeemed != 0 {
		redeemed = fmt.Sprintf(" -%d", r.Redeemed)
	}
	plain := fmt.Sprintf("+%d pts", r.Earned) + redeemed
	bonus := bonusPoints(r)
	if bonus <= 0 || bonus > int64(r.Earned) {
		return plain
	}
	split := fmt.Sprintf("+%d bonus", bonus)
	if base := int64(r.Earned) - bonus; base != 0 {
		split = fmt.Sprintf("+%d +%d bonus", base, bonus)
	}
	split += redeemed
	if utf8.RuneCountInString(split) > m.o.Width {
		return plain
	}
	return split
}

// bonusPoints is the part of a sale's earned points that is bonus.
func bonusPoints(r *ledger.SaleResult) int64 {
	var n int64
	for _, e := range r.Events {
		if e.Kind == ledger.KindBonus {
			n += int64(e.Points)
		}
	}
	return n
}

// clip cuts s to the display width in runes (the driver pads).
func (m *Machine) clip(s string) string {
	if utf8.RuneCountInString(s) <= m.o.Width {
		return s
	}
	r := []rune(s)
	return string(r[:m.o.Width])
}

func (m *Machine) view() View {
	v := View{State: m.state.String(), SaleID: m.saleID, Prompt: m.prompt, Message: m.message, Offline: m.offline, Completed: m.completed}
	if m.showing {
		v.State = "points"
	}
	if m.member != nil {
		v.Member, v.MemberID, v.Language = m.member.Name, m.member.ID, m.member.Language
		v.Balance = int64(m.balance)
		if r, d, ok := m.next(); ok {
			v.NextReward, v.ToNext = r.Name, d
		}
		if r, ok := m.canRedeem(); ok {
			v.CanRedeem = r.Name
		}
		v.Tier = m.member.Tier
		if g := m.tierGoal; g != nil {
			v.NextTier, v.TierSpend, v.TierVisits = g.Name, g.Spend, g.Visits
		}
	}
	if m.lastSale != nil {
		v.Earned, v.Redeemed = int64(m.lastSale.Earned), int64(m.lastSale.Redeemed)
		for _, e := range m.lastSale.Events {
			if e.Kind == ledger.KindBonus && e.Points != 0 {
				v.Bonus += int64(e.Points)
				v.Bonuses = append(v.Bonuses, BonusView{Reason: e.Reason, Points: int64(e.Points)})
			}
		}
	}
	for _, l := range m.lines {
		v.Lines = append(v.Lines, LineView{SKU: l.SKU, Name: m.names[l.SKU], Quantity: l.Quantity, Amount: l.Amount()})
	}
	for _, r := range m.redeem {
		v.Discounts = append(v.Discounts, DiscountView{RewardID: r.ID, Name: r.Name, Amount: -ledger.Money(r.Discount)})
	}
	v.Total = m.total()
	if m.lastSale != nil {
		v.Total = m.lastSale.Sale.Total
	}
	if m.state == Redeem {
		aff := m.affordable()
		for i, r := range aff {
			v.Rewards = append(v.Rewards, RewardView{ID: r.ID, Name: r.Name, Points: r.Points, Discount: r.Discount, Selected: i == m.cursor%len(aff)})
		}
	} else {
		for _, r := range m.redeem {
			v.Rewards = append(v.Rewards, RewardView{ID: r.ID, Name: r.Name, Points: r.Points, Discount: r.Discount, Chosen: true})
		}
	}
	return v
}

// Snapshot returns the current view without changing anything.
func (m *Machine) Snapshot() View { return m.view() }

// SortRewards orders a rewards catalogue by points, cheapest first, which is
// how the redeem step lists them.
func SortRewards(rs []rules.Reward) []rules.Reward {
	out := append([]rules.Reward(nil), rs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Points < out[j].Points })
	return out
}

// randomSaleID returns "<register>-<16 hex>" from random bytes, drawn
// again while the id carries what looks like a payment card number: about
// one random id in a thousand has a Luhn-valid run of 13-19 digits (with
// the register id's last digit, which a dash joins to the run, as card
// numbers are printed), and the ledger refuses such an id, so the
// cashier's sale would fail. A register id that itself carries one gives
// up after a few draws; its sales are refused with the ledger's error.
func randomSaleID(register string, random func([]byte)) string {
	var id string
	for range 16 {
		var b [8]byte
		random(b[:])
		id = register + "-" + hex.EncodeToString(b[:])
		if !cardsafe.Carries(id) {
			break
		}
	}
	return id
}
