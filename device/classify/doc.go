// Package classify decides what a scanned code means to the register: an
// item code (EAN-13, UPC-A, EAN-8, in-store GS1 20-29 labels with an
// embedded price or weight), a member card (configured patterns), a cashier
// control code (configured map), or a rejection with a reason.
//
// It is pure and allocation-light so it can run on every scan. A payment
// card number is always rejected with device.ErrNotMemberCard and never
// returned or quoted in an error.
package classify
