package ledger

// CONTRACT FILE (temporary): the public API other packages code against.
// The ledger implementer replaces these stubs with the real implementation
// (same names and signatures; additions are fine, changes must be announced
// in docs/ARCHITECTURE.md).

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Sentinel errors. Callers test with errors.Is.
var (
	ErrNotImplemented  = errors.New("ledger: not implemented")
	ErrConflict        = errors.New("ledger: id already used with different content")
	ErrUnknownMember   = errors.New("ledger: unknown member")
	ErrUnknownSale     = errors.New("ledger: unknown sale")
	ErrInvalid         = errors.New("ledger: invalid input")
	ErrInsufficient    = errors.New("ledger: not enough points")
	ErrOfflineLimit    = errors.New("ledger: offline redemption limit reached")
	ErrRefundExceeds   = errors.New("ledger: refund exceeds what was sold")
	ErrAliasTaken      = errors.New("ledger: alias belongs to another member")
	ErrLocked          = errors.New("ledger: file is locked by another process")
	ErrSchemaTooNew    = errors.New("ledger: schema version is newer than this program")
	ErrCorrupt         = errors.New("ledger: file is corrupt")
	ErrNoSpace         = errors.New("ledger: no space left on device")
	ErrClosed          = errors.New("ledger: closed")
	ErrPruneNotAllowed = errors.New("ledger: prune beyond confirmed watermark")
)

// Clock gives the wall time and whether it is trusted (NTP synced).
type Clock interface {
	Now() (t time.Time, trusted bool)
}

// Options configures Open. A nil *Options means defaults.
type Options struct {
	Register           string        // register id, e.g. "store1-r1"; required
	LockTimeout        time.Duration // default 1s
	Clock              Clock         // default: system clock, trusted
	Rules              *rules.RuleSet
	OfflineRedeemLimit Points // max points a member may redeem while head office is unreachable (0 = none allowed offline? see docs)
	ReadOnly           bool
}

// SaleRequest asks to record a completed sale.
type SaleRequest struct {
	ID          string // idempotency key
	MemberID    string // optional
	Lines       []Line
	Tenders     []Tender
	Redemptions []RedeemRequest
	HQReachable bool // whether head office is currently reachable (offline limit)
}

// RedeemRequest redeems a catalogue reward within a sale.
type RedeemRequest struct {
	RewardID string
}

// SaleResult is what recording a sale produced.
type SaleResult struct {
	Sale     Sale
	Events   []PointEvent
	Balance  Points // member balance after the sale
	Earned   Points // net points earned by this sale (earn + bonus)
	Redeemed Points
	Replayed bool // true when the sale id was already recorded and this is the first result again
}

// RefundRequest refunds whole lines or part of their quantity.
type RefundRequest struct {
	ID     string // idempotency key of the refund
	SaleID string
	Lines  []RefundLine // empty means the whole sale
}

// RefundLine refunds Quantity units of line No.
type RefundLine struct {
	No       int
	Quantity int64
}

// Ledger is an open ledger file.
type Ledger struct{}

// Open opens or creates the ledger at path.
func Open(path string, opts *Options) (*Ledger, error) { return nil, ErrNotImplemented }

// Close closes the file.
func (l *Ledger) Close() error { return ErrNotImplemented }

// RecordSale records a sale durably and returns its result.
func (l *Ledger) RecordSale(ctx context.Context, req SaleRequest) (SaleResult, error) {
	return SaleResult{}, ErrNotImplemented
}

// Refund refunds a sale fully or by line.
func (l *Ledger) Refund(ctx context.Context, req RefundRequest) (SaleResult, error) {
	return SaleResult{}, ErrNotImplemented
}

// Void voids a whole sale (id is the idempotency key of the void).
func (l *Ledger) Void(ctx context.Context, id, saleID, reason string) (SaleResult, error) {
	return SaleResult{}, ErrNotImplemented
}

// Adjust credits (positive) or debits (negative) points manually.
func (l *Ledger) Adjust(ctx context.Context, id, memberID string, pts Points, reason, operator string) (PointEvent, error) {
	return PointEvent{}, ErrNotImplemented
}

// Enrol creates a member (idempotent by m.ID).
func (l *Ledger) Enrol(ctx context.Context, m Member) (Member, error) {
	return Member{}, ErrNotImplemented
}

// SetConsent records a consent change.
func (l *Ledger) SetConsent(ctx context.Context, memberID string, c Consent) (Member, error) {
	return Member{}, ErrNotImplemented
}

// LookupAlias finds a member by any alias (card, phone).
func (l *Ledger) LookupAlias(alias string) (Member, error) { return Member{}, ErrNotImplemented }

// Member returns a member by id.
func (l *Ledger) Member(id string) (Member, error) { return Member{}, ErrNotImplemented }

// Balance returns the member's current balance.
func (l *Ledger) Balance(memberID string) (Points, error) { return 0, ErrNotImplemented }

// Events returns a member's point events in sequence order.
func (l *Ledger) Events(memberID string) ([]PointEvent, error) { return nil, ErrNotImplemented }

// Purchases returns a member's purchase index in sequence order.
func (l *Ledger) Purchases(memberID string) ([]Purchase, error) { return nil, ErrNotImplemented }

// Sale returns a recorded sale.
func (l *Ledger) Sale(id string) (Sale, error) { return Sale{}, ErrNotImplemented }

// Outbox returns up to max records with Seq > after, in sequence order.
func (l *Ledger) Outbox(after uint64, max int) ([]OutboxRecord, error) {
	return nil, ErrNotImplemented
}

// Confirm records head office's acknowledged watermark (all seq <= w are
// durably applied at head office) and prunes the outbox up to it.
func (l *Ledger) Confirm(w uint64) error { return ErrNotImplemented }

// OutboxNotify returns a channel that receives a value (non-blocking send)
// after each commit that added outbox records.
func (l *Ledger) OutboxNotify() <-chan struct{} { return nil }

// Check verifies bbolt's consistency and the ledger invariants.
func (l *Ledger) Check() error { return ErrNotImplemented }

// Backup writes a consistent copy of the open ledger to w.
func (l *Ledger) Backup(w io.Writer) (int64, error) { return 0, ErrNotImplemented }
