package ledger

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test with errors.Is; the ledger wraps them with
// short context (the file, the id, the field) so the message alone says what
// is wrong.
var (
	// ErrConflict: an idempotency id (sale, refund, void, adjustment,
	// member id) was already used with different content. Nothing was
	// written.
	ErrConflict = errors.New("ledger: id already used with different content")

	// ErrUnknownMember: no member with that id or alias.
	ErrUnknownMember = errors.New("ledger: unknown member")

	// ErrUnknownSale: no sale with that id.
	ErrUnknownSale = errors.New("ledger: unknown sale")

	// ErrUnknownItem: no catalogue item with that SKU.
	ErrUnknownItem = errors.New("ledger: unknown item")

	// ErrInvalid: the request is malformed (empty id, zero or negative
	// quantity or price, int64 overflow in an amount, unknown reward...).
	// Nothing was written.
	ErrInvalid = errors.New("ledger: invalid input")
	// ErrCardNumber: a payment card number where the ledger keeps text (an
	// id, alias, SKU, name or note). It also matches ErrInvalid. The error
	// text never contains the number.
	ErrCardNumber = fmt.Errorf("ledger: payment card number refused: %w", ErrInvalid)

	// ErrInsufficient: a redemption or negative adjustment would take the
	// member's effective balance below zero.
	ErrInsufficient = errors.New("ledger: not enough points")

	// ErrOfflineLimit: the redemption would exceed Options.OfflineRedeemLimit
	// while head office is unreachable (see the package doc for the rule).
	ErrOfflineLimit = errors.New("ledger: offline redemption limit reached")

	// ErrRefundExceeds: a refund or void asks for more units than are left
	// to refund on the sale (including a sale already voided).
	ErrRefundExceeds = errors.New("ledger: refund exceeds what was sold")

	// ErrSaleVoided and ErrFullyRefunded say why nothing is left to refund
	// or void: the sale was voided, or every unit of it was refunded. Both
	// match ErrRefundExceeds too.
	ErrSaleVoided    = fmt.Errorf("%w: the sale was voided", ErrRefundExceeds)
	ErrFullyRefunded = fmt.Errorf("%w: the sale is fully refunded", ErrRefundExceeds)

	// ErrAliasTaken: an alias (card, phone) already belongs to another
	// member.
	ErrAliasTaken = errors.New("ledger: alias belongs to another member")

	// ErrLocked: another process holds the ledger file open (Open waited
	// Options.LockTimeout). The message names the file.
	ErrLocked = errors.New("ledger: file is locked by another process")

	// ErrSchemaTooNew: the file was written by a newer program (or carries
	// an unknown schema). It is left untouched.
	ErrSchemaTooNew = errors.New("ledger: schema version is newer than this program")

	// ErrCorrupt: the file is not a valid ledger. It is never overwritten;
	// the message names the file and the recovery step.
	ErrCorrupt = errors.New("ledger: file is corrupt")

	// ErrNoSpace: the disk (or the file size limit) is full; the operation
	// was not recorded and the ledger is still consistent. Wraps the
	// underlying ENOSPC or EFBIG.
	ErrNoSpace = errors.New("ledger: no space left on device")

	// ErrStorage: writing or syncing the ledger file failed (EIO, or a
	// sync that failed for any reason). The operation was not recorded.
	// After a failed sync the operating system's copy of the file can no
	// longer be trusted (it may hold pages that never reached the card),
	// so the open ledger refuses every later write with ErrStorage too;
	// what was acknowledged before is safe. Stop loyaltyd, check the card
	// and restart it.
	ErrStorage = errors.New("ledger: storage failed")

	// ErrClosed: the ledger was closed.
	ErrClosed = errors.New("ledger: closed")

	// ErrPruneNotAllowed: Confirm was asked to confirm sequence numbers the
	// ledger never wrote.
	ErrPruneNotAllowed = errors.New("ledger: prune beyond confirmed watermark")

	// ErrStaleVersion: a rule set or catalogue version not newer than the
	// one in force.
	ErrStaleVersion = errors.New("ledger: version is not newer than the one in force")

	// ErrClockUntrusted: the operation needs a trusted wall clock (expiry)
	// and the injected Clock says it is not synchronised yet.
	ErrClockUntrusted = errors.New("ledger: wall clock not trusted")

	// ErrClockFault: the clock says it is synchronised but disagrees with
	// the trusted time the ledger has seen (behind it, or ahead by more
	// than the time elapsed, or after a restart by more than
	// Options.ClockRestartStep); expiry waits until a person confirms the
	// clock (ConfirmClock) or it agrees again.
	ErrClockFault = errors.New("ledger: wall clock disagrees with the trusted time seen")

	// ErrOtherRegister: the file records the events of another register
	// id than Options.Register: a ledger copied from another register, or
	// a config whose register.id was changed under an existing ledger.
	// Its events carry the other id, so head office would refuse them and
	// the stream would stop for good. The file is left untouched.
	ErrOtherRegister = errors.New("ledger: file records another register's events")

	// ErrReadOnly: a write on a ledger opened with Options.ReadOnly.
	ErrReadOnly = errors.New("ledger: opened read-only")

	// ErrInconsistent: Check found a broken ledger invariant.
	ErrInconsistent = errors.New("ledger: invariant broken")

	// ErrUnknownReward: a redemption names a reward the rule set in force
	// does not have. Nothing was written.
	ErrUnknownReward = errors.New("ledger: unknown reward")

	// ErrRewardExceedsSale: the rewards redeemed are worth more than the
	// sale's amount; redeem fewer, or add to the basket. Nothing was
	// written.
	ErrRewardExceedsSale = errors.New("ledger: rewards worth more than the sale")
)
