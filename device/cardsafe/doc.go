// Package cardsafe recognises payment card numbers (PANs) so that the device
// layer can refuse them, and provides the check-digit arithmetic shared by
// barcodes and member cards (GS1 mod 10 and Luhn).
//
// A payment card swiped or scanned by mistake carries a real card number:
// it must never be stored, logged or passed on. Callers reject input for
// which ContainsPAN is true and report it without the number.
package cardsafe
