package ledger

import (
	"fmt"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
)

// noCard refuses a payment card number in any text the ledger would keep
// (ids, aliases, SKUs, names, notes), by the scanner's rules
// (cardsafe.Carries), without repeating it: the ledger file, the outbox
// and head office never see one.
func noCard(what, s string) error {
	if cardsafe.Carries(s) {
		return fmt.Errorf("%s is a payment card number; card numbers are never stored: %w", what, ErrCardNumber)
	}
	return nil
}

// noCards applies noCard to pairs of (what, text).
func noCards(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := noCard(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}
