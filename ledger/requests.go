package ledger

// SaleRequest asks to record a completed sale.
type SaleRequest struct {
	ID          string // idempotency key
	MemberID    string // optional
	Lines       []Line
	Tenders     []Tender // optional; when given they must add up to the total
	Redemptions []RedeemRequest
	// HQReachable says whether head office is reachable now; while it is
	// false redemptions count against Options.OfflineRedeemLimit. It is
	// not part of the sale's content: a retry may differ in it.
	HQReachable bool
}

// RedeemRequest redeems a catalogue reward within a sale.
type RedeemRequest struct {
	RewardID string
}

// SaleResult is what recording a sale (or a refund or void of it)
// produced.
type SaleResult struct {
	Sale     Sale
	Events   []PointEvent
	Balance  Points  // member's effective balance after the operation
	Earned   Points  // net points earned (earn + bonus; negative for a refund)
	Redeemed Points  // points spent (negative when a refund gives them back)
	Replayed bool    // the id was already recorded and this is the first result again
	Refund   *Refund `json:",omitempty"` // set for refunds and voids
}

// RefundRequest refunds whole lines or part of their quantity.
type RefundRequest struct {
	ID     string // idempotency key of the refund
	SaleID string
	Lines  []RefundLine // empty means every unit not yet refunded
}

// RefundLine refunds Quantity units of line No.
type RefundLine struct {
	No       int
	Quantity int64
}
