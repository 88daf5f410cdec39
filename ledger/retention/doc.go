// Package retention turns purchase histories into what head office and the
// cashier act on: each member's own purchase rhythm (overall and per
// category), segments and flags (new, second purchase, regular, VIP, due,
// sleeping, lost), a value-by-risk matrix, contact lists that respect consent
// and reminder caps, retention metrics with an uplift calculator, the one
// prompt a cashier sees at the register, and the CDNOW evaluation that
// chose the default "sleeping" rule.
//
// It is pure analytics: the input is plain data (Member with its
// Purchases), read from a ledger, from head office's store or from a file by
// the caller; the only I/O is parsing from an io.Reader. Time never comes
// from the wall clock: every function takes an asOf date. Days are calendar
// days in the store's time zone (Config.Location); several purchases on one
// day count once, as the repeat-buying literature counts them.
//
// The BG/NBD model itself lives in package bgnbd.
package retention
