// Package storetest is the conformance suite of head office's store: one
// set of behaviours (exactly-once ingest, gaps held and drained, conflicts
// kept first, chain-wide members and aliases, double spends, purchases,
// config versions, review holds, Check) that every backend of
// hqstore.Backend must show. A backend's own test calls Run with a
// constructor of fresh, empty stores: the bbolt store in package hqstore,
// the PostgreSQL store in hqstore/pgstore.
package storetest
