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
}

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
	c := st
	return &c
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

// acceptsField reports whether a register's last status lists an optional
// ack field (protocol.AckFields): registers before that list refuse an
// ack with a field they do not know.
func (f *fleet) acceptsField(store, register, field string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.regs[regKey{store, register}]
	return r != nil && r.Status != nil && slices.Contains(r.Status.AckFields, field)
}
