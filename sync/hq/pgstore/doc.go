// Package pgstore is head office's store on PostgreSQL, for a chain: the
// same hqstore.Backend as the embedded bbolt store (the same applier,
// hqstore.ApplyIn, over a PostgreSQL transaction), so several loyalty-hq
// workers can ingest at once, and reports read the live database.
//
// # Several writers
//
// Each Apply is one transaction that first locks, in id order, the rows
// of every register in the batch (a new register's row is inserted
// first, so it can be locked) and of every existing member whose balance
// or profile the batch needs (a redemption, a member, consent or clock
// event); the applier then updates members in id order. So one register's
// stream is applied by one worker at a time, whichever worker a message
// reached; a double spend is judged under the member's row lock; and two
// workers never wait on each other in a cycle. A member's balance is the
// sum of its rows in hq_member_regs, one per register, holding that
// register's points and Included mark: they are written only under their
// register's lock, so members that a batch only credits (earned points,
// the bulk of the stream) are neither locked nor read, and their points
// are added in one statement (hqstore.TouchesCredited). Events are
// inserted with ON CONFLICT DO NOTHING on (register, seq). The reads and
// locks of a batch go to the server with BEGIN in one round trip at the
// start, its writes (one statement per table) with COMMIT in one at the
// end. Rows that are never deleted and that this process saw committed
// (registers and members that exist, recent marks of where a member
// shopped) are not read again (known.go). A deadlock, serialisation
// failure or a unique key taken by a concurrent writer (a new member,
// alias, sale or config kind) rolls the transaction back and runs it
// again, up to Options.Retries times.
//
// # Schema
//
// Tables are prefixed hq_; the schema version is in hq_meta. Open
// applies the migrations this program knows that the database lacks, one
// transaction each, under a lock so workers starting together migrate
// once; a database whose schema is newer than the program is refused
// (hqstore.ErrSchemaTooNew).
//
// # Errors
//
// Connection errors name the server's address and never the password
// (it is removed from every error this package returns).
package pgstore
