package checkout

import "github.com/loyalty-terminal/loyalty/device/cardsafe"

// refuseCard refuses an event whose code or name is a payment card
// number (keyed in through the API: the scanner path refuses them in the
// device layer already). The display says so without the number.
func refuseCard(m *Machine, ev Event) (Effects, bool) {
	switch ev.Kind {
	case EvItem, EvManualItem, EvCard, EvPhone, EvPickReward:
	default:
		return Effects{}, false
	}
	if !cardsafe.Carries(ev.Code) && !cardsafe.Carries(ev.Name) {
		return Effects{}, false
	}
	return m.reject(ErrCardNumber, "Bank card refused"), true
}
