package hqstore

import (
	"encoding/json"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// The store interfaces. *Store (bbolt, one process, the embedded default)
// and the PostgreSQL backend (package hqstore/pgstore, several workers)
// implement Backend; callers take the smallest interface they need.
// storetest.Run checks a Backend's behaviour; both backends pass it.

// Ingest is what head office's service needs: apply register streams,
// resume the acks, send summaries and record config documents.
type Ingest interface {
	// Apply applies a batch of events durably and reports what happened
	// (see the package documentation for the rules); the error is only
	// for storage failures, in which case nothing was applied.
	Apply(events []Event) (Result, error)
	// Registers returns every register's state, sorted by id.
	Registers() ([]RegisterState, error)
	// RegisterState returns one register's state as committed now (by
	// any worker on a shared store); a register never heard of has the
	// zero state with its id.
	RegisterState(register string) (RegisterState, error)
	// EachMember calls fn for every member in id order.
	EachMember(fn func(m ledger.Member) error) error
	// Summaries returns the summaries of the given members in the order
	// given; ids never seen are skipped.
	Summaries(ids []string) ([]MemberSummary, error)
	// RecordConfig records doc as the version in force of a kind;
	// ErrStaleConfig when version is not newer than the one recorded.
	RecordConfig(kind string, version uint64, doc json.RawMessage) error
	// ForgetConfig drops the recorded document of a kind (none recorded:
	// nil), so any version of it can be recorded again: head office
	// forgets what a signing key it no longer trusts signed (docs/operations.md
	// "Recovering from a leaked signing key").
	ForgetConfig(kind string) error
	// NextEpoch durably increments and returns a counter.
	NextEpoch() (uint64, error)
	// Configs returns the latest recorded document of every kind (head
	// office's policy reads the rule sets among them at start).
	Configs() ([]ConfigDoc, error)
	// SetPolicy makes Apply check every event against p as it applies
	// it, in sequence order, and hold what p refuses: applied to the
	// stream, not to balances, aliases or profiles; listed by Review with
	// Reason ReviewPolicy; counted in RegisterState.PolicyHeld; reported
	// in Result.PolicyHolds (policy.go). nil: no checks.
	SetPolicy(p *policy.Policy)
	Streams
	// Erasures: member erasure, the records head office's erase
	// documents are made from, and the registers' confirmations
	// (erase.go).
	Erasures
}

// Streams are the stores' member-summary streams (docs/protocol.md
// "Member summaries"): which stores each member's summary goes to, each
// store's positions, what was sent, catch-ups and lookups. Apply marks the
// changed members and where they were seen (Txn.MarkChanged).
type Streams interface {
	// TakeSummaries takes up to max changed members, places each at a new
	// position of the streams of the stores where it shopped within the
	// last months months (<= 0: ever) and returns one batch per store.
	TakeSummaries(months, max int) ([]StreamBatch, error)
	// CatchUp returns the part of a store's stream after from, up to max
	// members; more says whether members follow.
	CatchUp(store string, from uint64, max int) (b StreamBatch, more bool, err error)
	// SummarySent records that a store's stream up to seq was published.
	SummarySent(store string, seq uint64) error
	// SummaryStreams returns every store's stream state, in store order.
	SummaryStreams() ([]StreamState, error)
	// Rebase is for a register that applied a summary version above the
	// chain-wide counter (head office was restored from an older backup,
	// so its counter went back below what registers hold): the counter
	// moves to above, and every member of the store's stream is marked
	// changed, so the next TakeSummaries places them after above and the
	// registers take them as newer. With the counter at or above above it
	// changes nothing (rebased false). members is how many were marked.
	Rebase(store string, above uint64) (rebased bool, members int, err error)
	// SummaryCounter returns the chain-wide counter: no summary version
	// head office handed out since its store was last restored is above
	// it. Head office checks a register's claim against it before a
	// Rebase it may not make now (a register's credentials alone must not
	// rebase a store's stream at will).
	SummaryCounter() (uint64, error)
	// LookupSummary finds a member by one of its aliases (a card or
	// phone number presented at a till): its summary and the summary's
	// version; ErrUnknownMember when no member has that alias. A member
	// id is not an alias: a register that knows only the id learns
	// nothing (docs/protocol.md "Card lookup").
	LookupSummary(alias string) (MemberSummary, uint64, error)
	// ShopsOf returns the stores that hold the member, where it was seen
	// (enrolled, bought) or that were told about it (LookedUp), within
	// months months (<= 0: ever), in store order: the stores its
	// summaries and erase documents go to.
	ShopsOf(member string, months int) ([]string, error)
	// LookedUp records that a store's register was told about the member
	// (a card lookup answered): from then on the store gets the member's
	// summaries and erase documents (ShopsOf). It is recorded apart from
	// where the member shops: the policy's profile check (Txn.Shops) does
	// not count it. A store already marked within the hour is not
	// written again.
	LookedUp(member, store string) error
}

// Views is what head office's status endpoint reads.
type Views interface {
	Registers() ([]RegisterState, error)
	// Summary is ErrUnknownMember for an id never seen.
	Summary(id string) (MemberSummary, error)
	Configs() ([]ConfigDoc, error)
	DoubleSpends() ([]DoubleSpend, error)
	Review() ([]Held, error)
	Conflicts() ([]Conflict, error)
	// Gaps lists the gaps an operator acknowledged (AcknowledgeGap).
	Gaps() ([]Gap, error)
}

// Reports is what the retention reports and contact lists read
// (ledger/retention/source's PurchaseSource and MemberSource).
type Reports interface {
	EachPurchase(fn func(memberID string, p ledger.Purchase) error) error
	EachMember(fn func(m ledger.Member) error) error
}

// Backend is a whole head-office store.
type Backend interface {
	Ingest
	Views
	Reports
	Watermark(register string) (uint64, error)
	Member(id string) (ledger.Member, error)
	Balance(id string) (ledger.Points, error)
	LookupAlias(alias string) (ledger.Member, error)
	EachSummary(fn func(MemberSummary) error) error
	Purchases(memberID string) ([]ledger.Purchase, error)
	// MoveRegister confirms that a register now belongs to another store
	// and returns how many held events it released; without force it
	// refuses (ErrInvalid) a store from which none of the register's
	// events are held.
	MoveRegister(register, to string, force bool) (int, error)
	// AcknowledgeGap records on an operator's word that register's
	// events from..to are lost for good (a head office restored from an
	// older backup, no register keeps them): only the gap head office
	// waits for (from = watermark+1, to below the first held event),
	// else ErrInvalid and nothing changes. The held events after it are
	// applied.
	AcknowledgeGap(register string, from, to uint64, note string) (Gap, error)
	// AdoptIncarnation confirms that incarnation inc replaces the one
	// head office follows for register (a replaced card); only one whose
	// held events continue the stream (AdoptCheck), else ErrInvalid. It
	// returns how many held events it released.
	AdoptIncarnation(register, inc string) (int, error)
	// ResolvePolicy ends the review of an event the policy held: approve
	// applies its effect, otherwise it stays unapplied for good; either
	// way it leaves Review. ErrNotHeld when it is not held (any more).
	ResolvePolicy(register string, seq uint64, approve bool) ([]string, error)
	// Check verifies the store's invariants (contiguous streams up to each
	// watermark but for acknowledged gaps, held events beyond it, balances equal to the sum of
	// their point events).
	Check() error
	Close() error
}

var _ Backend = (*Store)(nil)

// Change is what one worker's commits changed, as other workers on the
// same store learn it (pgstore's Coordinator): members whose chain-wide
// view changed and the stores whose registers sent events.
type Change struct {
	Members []string `json:"m,omitempty"`
	Stores  []string `json:"s,omitempty"`
}
