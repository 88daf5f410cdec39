package hq

import (
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// FleetRegister is what head office heard from one register on its
// status topic (retained, and the broker's last will when the register's
// connection dies), for the fleet page.
type FleetRegister struct {
	Store    string `json:"store"`
	Register string `json:"register"`
	// Status is the register's last valid status; nil when none came.
	Status *protocol.Status `json:"status,omitempty"`
	// At is when head office received it (its own clock).
	At time.Time `json:"at,omitzero"`
	// Refused is why the last status message was refused (a version
	// head office does not speak, malformed), empty when it was valid.
	Refused string `json:"refused,omitempty"`
	// Takeover, when not empty, says that two registers use this
	// register id: statuses of two ledger incarnations alternate on its
	// topic (one comes back after the other within TakeoverWindow), or the
	// register reports its broker session taken over. TakeoverAt is when
	// head office last saw it.
	Takeover   string    `json:"takeover,omitempty"`
	TakeoverAt time.Time `json:"takeover_at,omitzero"`
	// incs are the incarnations seen on the topic, with when; lastInc the
	// latest.
	incs    map[string]time.Time
	lastInc string
}

// TakeoverWindow: an incarnation whose status comes back within this
// long after another's, under one register id, means two live registers
// (a copied config). A replaced register's old incarnation never comes
// back, so a replacement is not taken for one.
const TakeoverWindow = 10 * time.Minute

// fleet keeps the last status of every register (in memory: the retained
// copies come back at each connect).
type fleet struct {
	mu   stdsync.Mutex
	regs map[regKey]*FleetRegister
}

func newFleet() *fleet { return &fleet{regs: map[regKey]*FleetRegister{}} }

// status records one message from a status topic and returns it decoded
// (nil when refused or cleared). A cleared retained message (empty
// payload) forgets the register's status.
func (f *fleet) status(topic string, payload []byte, now time.Time) *protocol.Status {
	t, err := protocol.ParseTopic(topic)
	if err != nil || t.Kind != protocol.KindStatus {
		return nil
	}
	k := regKey{t.Store, t.Register}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(payload) == 0 {
		delete(f.regs, k)
		return nil
	}
	r := f.regs[k]
	if r == nil {
		r = &FleetRegister{Store: t.Store, Register: t.Register}
		f.regs[k] = r
	}
	r.At = now
	st, err := protocol.DecodeStatus(payload, t.Store, t.Register)
	if err != nil {
		r.Refused = err.Error()
		return nil
	}
	r.Status, r.Refused = &st, ""
	r.seeTakeover(st, now)
	c := st
	return &c
}

// seeTakeover records a takeover the status shows: another incarnation
// than one seen within TakeoverWindow, or the register's own count.
func (r *FleetRegister) seeTakeover(st protocol.Status, now time.Time) {
	if st.Incarnation != "" {
		if r.incs == nil {
			r.incs = map[string]time.Time{}
		}
		for inc, at := range r.incs {
			if now.Sub(at) > TakeoverWindow {
				delete(r.incs, inc)
			}
		}
		_, back := r.incs[st.Incarnation]
		back = back && r.lastInc != "" && r.lastInc != st.Incarnation
		r.incs[st.Incarnation], r.lastInc = now, st.Incarnation
		var others []string
		for inc := range r.incs {
			if inc != st.Incarnation {
				others = append(others, inc)
			}
		}
		if back {
			slices.Sort(others)
			r.Takeover = "two registers use register id " + r.Register + ": ledgers " + st.Incarnation + " and " + strings.Join(others, ", ") +
				" both sent their status within " + TakeoverWindow.String() + " (a copied config?); give each register its own register.id (docs/operations.md)"
			r.TakeoverAt = now
			return
		}
	}
	if st.Takeovers > 0 && r.Takeover == "" {
		r.Takeover = "the register reports its broker session taken over: another register may use register id " + r.Register + " (docs/operations.md)"
		r.TakeoverAt = now
	}
}

// Takeovers returns the registers head office saw two registers use
// (FleetRegister.Takeover), by store and register.
func (s *Service) Takeovers() []FleetRegister {
	var out []FleetRegister
	for _, r := range s.Fleet() {
		if r.Takeover != "" {
			out = append(out, r)
		}
	}
	return out
}

// Fleet returns the last status of every register that sent one, by store
// and register.
func (s *Service) Fleet() []FleetRegister {
	f := s.fleet
	f.mu.Lock()
	out := make([]FleetRegister, 0, len(f.regs))
	for _, r := range f.regs {
		c := *r
		if r.Status != nil {
			st := *r.Status
			c.Status = &st
		}
		out = append(out, c)
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b FleetRegister) int {
		if c := strings.Compare(a.Store, b.Store); c != 0 {
			return c
		}
		return strings.Compare(a.Register, b.Register)
	})
	return out
}

// accepts reports whether a register accepts an ack notice code: every
// register the legacy ones, others only when its last status lists the
// code (registers before that list refuse an ack with any other code,
// and would then never confirm their events).
func (f *fleet) accepts(store, register, code string) bool {
	if protocol.LegacyNotice(code) {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.regs[regKey{store, register}]
	return r != nil && r.Status != nil && slices.Contains(r.Status.Notices, code)
}

// acceptsMemberField reports whether a register's last status lists an
// optional member summary field (protocol.MemberFields).
func (f *fleet) acceptsMemberField(store, register, field string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.regs[regKey{store, register}]
	return r != nil && r.Status != nil && slices.Contains(r.Status.MemberFields, field)
}

// storeRegisters lists the registers of store the fleet has heard of.
func (f *fleet) storeRegisters(store string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.regs {
		if k.store == store {
			out = append(out, k.register)
		}
	}
	return out
}

// acceptsField reports whether a register's last status lists an optional
// ack field (protocol.AckFields): registers before that list refuse an
// ack with a field they do not know.
func (f *fleet) acceptsField(store, register, field string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.regs[regKey{store, register}]
	return r != nil && r.Status != nil && slices.Contains(r.Status.AckFields, field)
}
