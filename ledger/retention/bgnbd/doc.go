// Package bgnbd implements the BG/NBD repeat-buying model (Fader, Hardie and
// Lee, "Counting Your Customers the Easy Way", Marketing Science 2005): a
// maximum-likelihood fit over each customer's repeat count, recency and age,
// and per-customer predictions (probability still active, expected purchases
// in a coming window, probability of no purchase in it).
//
// It is pure numerics on plain summaries; building the summaries from
// purchases is the job of package retention.
package bgnbd
