// Package ledger is the register's durable record of members, sales and
// loyalty points, kept in a single bbolt file. The ledger/ tree is the
// register's record and what reads it (rules, retention, export); it never
// imports sync/. Head office's stores live with head office under sync/hq/.
//
// Invariants (checked by (*Ledger).Check):
//
//   - Every ledger event (sale, refund, void, point event, member change) has
//     a per-register sequence number, strictly increasing without gaps, and a
//     unique id "<register>-<seq>". Sequence numbers, never wall time, order
//     events: a Raspberry Pi has no real-time clock.
//   - A member's materialised balance equals the sum of that member's point
//     events, and the member's open expiry lots minus its debt equal it too.
//   - Every event is written to the outbox in the same transaction as the
//     operation that caused it, and is removed only up to a watermark that
//     head office has confirmed as durably applied (an MQTT PUBACK is not
//     enough). The outbox always holds confirmed+1 .. last seq, preceded
//     without a hole by the confirmed events still kept for the keep window
//     (Options.KeepConfirmedFor, KeepConfirmedBytes): a head office
//     restored from an older backup asks for them again (Kept).
//   - Every operation is idempotent by its caller-chosen id (sale id, refund
//     id, void id, adjustment id, member id): a retry returns the first
//     result and changes nothing; the same id with different content is
//     ErrConflict.
//   - Everything is validated before anything is written: bad input returns
//     an error wrapping a sentinel of errors.go and changes nothing.
//   - An operation returns only after its transaction is durable on disk;
//     a sale is acknowledged to the cashier only after that.
//
// # Group commit
//
// Writes go through one committer goroutine. It takes whatever operations
// are queued (at most Options.MaxBatch), runs each against the shared
// transaction (each validates against the state the earlier ones left, and
// an op that fails validation writes nothing, so it does not disturb the
// others), then commits once. A lone caller pays one commit (two
// fdatasyncs) and never waits for others; concurrent callers share one.
// When the last commit showed concurrent callers (its own ops plus those
// queued during it) and fewer have arrived, the committer waits for the
// rest, at most Options.GroupDelay (DefaultGroupDelay, 1 ms) after that
// commit: otherwise the callers it just answered miss the next batch and
// 16 callers commit in alternate halves (BenchmarkGroupCommit's
// mean_batch_16_callers 10.5-12.0 without the wait, 14.8-15.8 with it
// in alternating runs). Every op is
// answered only after its commit is durable. If the commit fails, every op
// of the batch gets that error (ErrNoSpace for a full disk) and nothing of
// the batch is on disk.
//
// "Commits once" is, by default, one append to the sale log (salelog.go):
// the batch's writes, synced, with the bbolt transaction left open for
// the next batches and committed for many of them at once (a checkpoint).
// A failed append fails the batch as a failed commit does; a failed
// checkpoint loses nothing acknowledged (the batches stay in the log and
// Open applies them). Reads see every acknowledged batch: while batches
// are pending, view runs in the committer's open transaction, and the
// long reads (Check, Backup, Snapshot, the ForEach iterators) take a
// checkpoint first. Options.NoSaleLog commits every batch instead.
//
// # Power cuts and failing storage
//
// Only what was synced survives a power cut, so Open also syncs the
// ledger's directory (bbolt syncs the file it creates, not its entry).
// A commit that fails with EIO, or whose sync fails for any reason, is
// refused with ErrStorage, and the open ledger refuses every later write
// with ErrStorage too: after a failed sync the operating system's copy of
// the file may hold pages that never reached the card, so going on would
// build on writes that are not there (PostgreSQL's "fsyncgate", 2018).
// Running out of space while bbolt writes data pages is different: bbolt
// rolls back before the meta page, so that is ErrNoSpace and the ledger
// goes on. The power-cut tests run the ledger on a filesystem that forgets
// everything unsynced (ledger/ledgertest/powerfs).
//
// # Points, lots and expiry
//
// Earn and bonus events (and positive adjustments) open an expiry lot whose
// date is fixed when the points are earned: a later rule set never re-dates
// it. Negative movements (redeem, reverse, negative adjust) consume lots
// oldest first (by sequence); what finds no lot is recorded as debt, which
// the next credit pays off first. ExpireDue writes an expire event for each
// lot past its date, and only when the clock is trusted and agrees with the
// trusted-time high-water mark (see Time). Points earned while the clock
// was untrusted get their expiry date only when their time is corrected.
// ExpireDue finds the lots due through an index with one entry per member
// at (or, after a redemption used a lot up, before) its earliest expiry.
//
// # Refunds
//
// Refunding r more units of a line with q units that earned E points
// reverses floor(E*R/q) minus what earlier refunds of that line reversed,
// R being all units refunded so far. The last unit reverses exactly the
// rest, so no sequence of partial refunds reverses more than E. Bonuses not
// tied to a line are reversed, and points spent on rewards are given back
// (into the lots they came from, keeping their expiry) exactly once, when
// the sale's last unit is refunded or the sale is voided. Refunding more
// than is left is ErrRefundExceeds. Money is prorated the same way. A
// refund is never refused for lack of points: when the customer already
// spent what the refund takes back, the balance goes below zero (recorded
// as debt against the lots) and later credits pay it off. A refund never
// takes points twice: what already expired of the sale's lots counts as
// reversed (rows of kind 'x' keep the points expired per lot), so
// reversing an earn whose lot expired reverses only what is left.
//
// # Time
//
// A Pi has no real-time clock and NTP can be wrong. Every event records its
// wall time, the trust flag, and (from a clock.BootClock) the boot id and the
// monotonic time since that boot. The ledger keeps a high-water mark of
// trusted time with the boot and monotonic time at which it was seen. A
// synchronised clock behind the mark (more than Options.ClockTolerance),
// or in the same boot ahead of it by more than the monotonic time elapsed
// plus the tolerance, is a clock fault (ClockStatus): events are recorded
// untrusted with the fault named, expiry waits (ErrClockFault), tier
// windows end at the mark's estimate (mark plus elapsed), so a backward
// step never demotes. After a restart (a new boot) nothing measured the
// time the register was off, so a clock ahead of the mark by more than
// Options.ClockRestartStep (DefaultClockRestartStep, 7 days: longer than a
// till is normally switched off) plus the monotonic time since the boot
// started is the fault "ahead" too, until a person
// confirms it; within the step it is trusted and the mark moves to this
// boot. A clock that gives no boot (not a clock.BootClock, or an unknown
// boot id) is judged behind only. During any fault nothing is decided on
// the clock that cannot be undone: no lot expires, no confirmed event is
// forgotten for its age (Options.KeepConfirmedFor); sales are recorded and
// head office's acknowledgements taken as usual. The fault ends when the
// clock agrees again or a person confirms it (ConfirmClock).
//
// An event stamped by an untrusted (or faulty) clock is kept in the
// untimed bucket. CorrectTimes, once the clock is trusted, gives each a
// corrected wall time (trusted now minus the monotonic time elapsed since
// it in the same boot; the first trusted time for an earlier boot),
// records them in one clock.corrected outbox record (events are never
// rewritten) and decides, on the corrected time and once: the expiry of
// their lots (never computed from an untrusted time), the purchase index
// times tier windows read, what their sales would have earned more from
// campaigns, tier and birthday (one "clock-correction" bonus, never a
// debit), and the member's tier. An untrusted clock never changes a tier:
// its sales earn at the stored tier. Tiers come from one 12-month window
// over corrected times (Purchase.When), kept incrementally in per-member
// day rows, and each member's sum since their last sale in the
// committer's memory (window.go), so a sale reads only what left the
// window since and costs the same for a member with ten thousand
// purchases a year as for a new one; an uncorrected untrusted purchase
// counts in every window until its time is corrected, and a single entry
// stamped a year early does not end the window. The birthday bonus is credited once per occurrence
// (member and year of the birthday), whatever the clock did.
//
// # Offline redemption limit
//
// While SaleRequest.HQReachable is false, a member may redeem at most
// Options.OfflineRedeemLimit points at this register in total, counted over
// the offline redemptions head office has not yet seen: those with a
// sequence number above the Covered of the member's latest summary. A
// summary covering them frees the allowance. Zero allows no offline
// redemption. Redemptions while head office is reachable do not count.
//
// # Head-office overlay (chain-wide balances)
//
// Head office sends a MemberSummary per member: the chain-wide profile (so
// a card enrolled at another store is found here), the chain-wide Balance
// it computed, Covered = the highest sequence number of THIS register's
// events included in that balance, and a Version; summaries not newer than
// the one held are ignored. ApplyMemberSummary stores it beside the member
// without touching the member's local events, so Check's invariant stays
// on local events. Balance returns the effective balance: summary Balance
// plus this register's point events with seq > Covered (or the plain local
// sum when no summary arrived), kept as the summary's base (the local
// balance up to Covered, schema 9) so that it costs the same whatever the
// member's history. Redemptions check the effective balance.
// The summary's profile replaces the local one unless a local member or
// consent event newer than Covered exists (that change is still on its way
// to head office; the summary that covers it carries head office's
// decision, which for consent is the member's latest choice across the
// chain, Consent.Supersedes, so until then the register shows its own
// change); head office is the authority on aliases and may move an
// alias between members. Summaries produce no outbox records. Expiry runs
// on the lots earned at this register; head office expires the rest.
// The rules see the member's bonus state the same way (baseState): the
// summary's FirstBonus and BirthdayYear (what head office credited
// chain-wide) overlaid with this register's own state, so the
// first-purchase and birthday bonuses are paid once per member, not once
// per ledger: head office paid the first-purchase bonus, none is pending
// here; head office has a purchase and no bonus, a member with no sale
// here has it pending; head office credited a birthday, that birthday's
// year counts as paid. A summary without them (an older head office)
// leaves the register's own state, as before. They are kept in the
// member's row (flag mrBonus, after the untimed entries; schema 10: a
// schema 9 program refuses the file rather than fail on such a row;
// schema 11 is the sale log's, layout.go).
//
// # Catalogue in pieces
//
// A head-office catalogue too large for one message arrives in pieces
// (BeginPieced with the document, StagePiece per piece). They are staged
// in the bucket "catalogue_stage" (the manifest, one key per piece held,
// and a nested bucket of the items so far), created when first needed:
// no schema change, an older program ignores it. The catalogue in force
// is untouched until every piece is held; then, in one transaction, the
// staged bucket replaces the catalogue (bbolt MoveBucket, no copy) with
// the document's rule set and config version. Pieces of another version
// (ErrOtherVersion), with another digest or repeating a SKU change
// nothing; a reopen keeps what was staged and a newer document replaces
// it. Item reads the catalogue in the ledger at every scan; nothing holds
// it in memory.
//
// # Files, locking, recovery
//
// Open takes an exclusive lock (Options.LockTimeout, default 1 s), so a
// second daemon fails fast with ErrLocked; read-only opens take a shared
// lock and also wait for the daemon to stop. A newer schema is refused
// with ErrSchemaTooNew; a file that is not a valid ledger with ErrCorrupt,
// naming the file and the recovery step (restore the latest Backup, then
// verify: Open with ReadOnly and Check). A refused file is never written.
// Commits do not write bbolt's free list (NoFreelistSync); Close writes
// it, and an Open after a crash or power cut rebuilds it by walking the
// file (BenchmarkBigLedger's open_after_crash_ms).
// The ledger keeps zero-filled space (a quarter of the data, 64 KiB to
// 2 MiB) beyond bbolt's data so
// commits overwrite allocated blocks; a full disk gives ErrNoSpace and
// leaves the ledger consistent.
//
// Money is in integer minor units (Money); points are integers (Points).
package ledger
