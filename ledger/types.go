package ledger

import (
	"encoding/json"
	"time"
)

// Money is an amount in integer minor units of the store's currency (cents,
// agorot, stotinki). Never a float.
type Money int64

// Points is a number of loyalty points. Never a float.
type Points int64

// Consent records whether a member agreed to be contacted, and when and how
// that was given or withdrawn. The full history is kept on the member.
type Consent struct {
	Given        bool      `json:"given"`
	Channel      string    `json:"channel"` // how: "in-store", "api", "web", "paper"
	At           time.Time `json:"at"`
	ClockTrusted bool      `json:"clock_trusted"`
	Note         string    `json:"note,omitempty"`
}

// Contact holds the ways a member can be reached.
type Contact struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Member is a loyalty-club member. Aliases are every card number, phone
// number or other token that identifies the member at a register; each alias
// belongs to exactly one member.
type Member struct {
	ID              string    `json:"id"`
	Aliases         []string  `json:"aliases"`
	Name            string    `json:"name"`
	Birthday        string    `json:"birthday,omitempty"` // "YYYY-MM-DD" or "--MM-DD" when the year is unknown
	Contact         Contact   `json:"contact"`
	Consent         Consent   `json:"consent"`
	ConsentHistory  []Consent `json:"consent_history,omitempty"`
	Tier            string    `json:"tier"`
	EnrolledAt      time.Time `json:"enrolled_at"`
	EnrolledTrusted bool      `json:"enrolled_clock_trusted"`
	HomeRegister    string    `json:"home_register"`
	Language        string    `json:"language,omitempty"` // BCP 47 tag for displays and the kiosk page
}

// Line is one line of a sale; Amount is what it costs.
type Line struct {
	No        int    `json:"no"` // 1-based, unique within the sale
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice Money  `json:"unit_price"`
	Discount  Money  `json:"discount,omitempty"`
	Category  string `json:"category,omitempty"`
}

// Amount is Quantity*UnitPrice minus Discount. It does not check for
// overflow: RecordSale refuses a line whose amount overflows (ErrInvalid),
// so recorded lines and lines of a basket built from the catalogue are safe.
func (l Line) Amount() Money { return Money(l.Quantity)*l.UnitPrice - l.Discount }

// Tender is one way the customer paid. Kind is "cash", "card", "voucher",
// "points" (a reward redeemed as a discount) and so on; card numbers are
// never stored.
type Tender struct {
	Kind   string `json:"kind"`
	Amount Money  `json:"amount"`
}

// Redemption is a reward redeemed within a sale.
type Redemption struct {
	RewardID string `json:"reward_id"`
	Points   Points `json:"points"`
	Discount Money  `json:"discount"`
}

// Sale is a completed sale as recorded. ID is the caller's idempotency key
// (unique per chain, e.g. "<register>-<checkout counter>" or a POS id).
type Sale struct {
	ID           string       `json:"id"`
	Register     string       `json:"register"`
	Seq          uint64       `json:"seq"`
	MemberID     string       `json:"member_id,omitempty"`
	Lines        []Line       `json:"lines"`
	Tenders      []Tender     `json:"tenders"`
	Redemptions  []Redemption `json:"redemptions,omitempty"`
	Total        Money        `json:"total"` // sum of line amounts minus redemption discounts
	WallTime     time.Time    `json:"wall_time"`
	ClockTrusted bool         `json:"clock_trusted"`
	RuleVersion  int          `json:"rule_version"`
	TimeRef
}

// TimeRef says when an event happened beyond its wall time: the boot it
// happened in and the monotonic time since that boot started, so a wall
// time stamped by an untrusted clock can be corrected later (trusted now
// minus the elapsed monotonic time), and why the clock was not trusted
// when a synchronised clock disagreed with the trusted time seen before
// (ClockFault "behind" or "ahead").
type TimeRef struct {
	BootID     string `json:"boot_id,omitempty"`
	SinceBoot  int64  `json:"since_boot_ns,omitempty"`
	ClockFault string `json:"clock_fault,omitempty"`
}

// EventKind is the kind of a point event.
type EventKind string

// Point event kinds.
const (
	KindEarn    EventKind = "earn"    // points earned by a sale line
	KindBonus   EventKind = "bonus"   // first-purchase, birthday, campaign bonus
	KindRedeem  EventKind = "redeem"  // points spent on a reward (negative)
	KindReverse EventKind = "reverse" // refund or void undoing an earlier event
	KindAdjust  EventKind = "adjust"  // manual correction with reason and operator
	KindExpire  EventKind = "expire"  // lot reached its expiry (negative)
)

// PointEvent is one movement of points. Points is signed. ID is
// "<register>-<seq>". SaleID and Line link the event to what caused it;
// Reverses names the event an undo refers to.
type PointEvent struct {
	ID           string    `json:"id"`
	Register     string    `json:"register"`
	Seq          uint64    `json:"seq"`
	Kind         EventKind `json:"kind"`
	MemberID     string    `json:"member_id"`
	Points       Points    `json:"points"`
	SaleID       string    `json:"sale_id,omitempty"`
	Line         int       `json:"line,omitempty"`
	Reverses     string    `json:"reverses,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Operator     string    `json:"operator,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"` // for lots created by earn and bonus; fixed when earned
	RuleVersion  int       `json:"rule_version,omitempty"`
	WallTime     time.Time `json:"wall_time"`
	ClockTrusted bool      `json:"clock_trusted"`
	TimeRef
}

// Purchase is one entry of the per-member purchase index: enough to read a
// member's history and rhythm without scanning every sale. Refunds appear as
// entries with a negative Amount referring to the same SaleID.
type Purchase struct {
	SaleID       string    `json:"sale_id"`
	Seq          uint64    `json:"seq"`
	WallTime     time.Time `json:"wall_time"`
	ClockTrusted bool      `json:"clock_trusted"`
	Amount       Money     `json:"amount"`
	Categories   []string  `json:"categories,omitempty"`
	// CorrectedTime is the wall time reconstructed for an entry stamped
	// by an untrusted clock, once the clock was trusted (zero until then).
	CorrectedTime time.Time `json:"corrected_time,omitzero"`
}

// When is the time the entry counts at: the corrected time, else the wall
// time when it was trusted; ok is false for an uncorrected untrusted one.
func (p Purchase) When() (time.Time, bool) {
	switch {
	case !p.CorrectedTime.IsZero():
		return p.CorrectedTime, true
	case p.ClockTrusted:
		return p.WallTime, true
	}
	return time.Time{}, false
}

// OutboxType names the type of an outbox record; it becomes the CloudEvents
// "type" attribute on the wire ("org.loyalty.<type>").
type OutboxType string

// Outbox record types.
const (
	OutSale    OutboxType = "sale.recorded"
	OutRefund  OutboxType = "sale.refunded"
	OutVoid    OutboxType = "sale.voided"
	OutPoints  OutboxType = "points.event"
	OutMember  OutboxType = "member.upserted"
	OutConsent OutboxType = "member.consent"
	// OutClock corrects the wall times of earlier events stamped by an
	// untrusted clock (payload TimeCorrection); the events themselves are
	// never rewritten.
	OutClock OutboxType = "clock.corrected"
	// OutErased confirms to head office that this register carried out
	// head office's erasure of a member (payload Erased; erase.go).
	OutErased OutboxType = "member.erased"
)

// OutboxRecord is one ledger event waiting for head office. Seq is the
// per-register sequence number (no gaps), ID is "<register>-<seq>", Data is
// the JSON of the Sale, Refund, PointEvent or Member it describes.
type OutboxRecord struct {
	Seq          uint64          `json:"seq"`
	ID           string          `json:"id"`
	Type         OutboxType      `json:"type"`
	WallTime     time.Time       `json:"wall_time"`
	ClockTrusted bool            `json:"clock_trusted"`
	Data         json.RawMessage `json:"data"`
}
