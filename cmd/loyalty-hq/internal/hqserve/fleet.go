package hqserve

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	stdsync "sync"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// DefaultFleetSilence is how long a register may say it is online with
// events pending while head office's watermark for it does not move
// before the fleet page says why that may be.
const DefaultFleetSilence = 5 * time.Minute

// FleetRow is one register on the fleet page.
type FleetRow struct {
	Store    string `json:"store"`
	Register string `json:"register"`
	// State is online or offline (from its status and last will), or
	// unknown when head office has events but no status from it.
	State string `json:"state"`
	// LastSeen is when head office last heard from it: its last status
	// or the last move of its watermark.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Watermark is head office's; LastSeq the register's last event as
	// its status says; Lag the difference; Pending what the register
	// says head office has not confirmed.
	Watermark uint64 `json:"watermark"`
	LastSeq   uint64 `json:"last_seq"`
	Lag       uint64 `json:"lag"`
	Pending   uint64 `json:"pending"`
	Software  string `json:"software,omitempty"`
	// ConfigChain and ConfigStore are the config versions in force.
	ConfigChain uint64 `json:"config_chain"`
	ConfigStore uint64 `json:"config_store"`
	// LastError is the register's last error (link, config, members) or
	// why its status was refused.
	LastError string `json:"last_error,omitempty"`
	// Held counts its events held for review at head office, Reason why.
	Held   uint64 `json:"held,omitempty"`
	Reason string `json:"held_reason,omitempty"`
	// Diagnosis says what looks wrong and why it may be; empty when
	// nothing does.
	Diagnosis string `json:"diagnosis,omitempty"`
	// Takeover says that two registers use this register id
	// (hq.FleetRegister.Takeover); it is also the diagnosis.
	Takeover string `json:"takeover,omitempty"`
}

// FleetTotals are the chain's totals.
type FleetTotals struct {
	Registers    int    `json:"registers"`
	Online       int    `json:"online"`
	Offline      int    `json:"offline"`
	Pending      uint64 `json:"pending"`
	Lag          uint64 `json:"lag"`
	Held         uint64 `json:"held"`
	Diagnosed    int    `json:"diagnosed"`
	TakenOver    int    `json:"taken_over"` // register ids two registers use
	DoubleSpends int    `json:"double_spends"`
	Applied      uint64 `json:"applied"` // events applied since this process started
}

// FleetErasure is one erasure waiting for registers' confirmations.
type FleetErasure struct {
	N       uint64   `json:"n"`
	Member  string   `json:"member"`
	Pending []string `json:"pending"` // registers that have not confirmed
}

// FleetDoc is what GET /fleet returns and the page at / shows.
type FleetDoc struct {
	At           time.Time             `json:"at"`
	Connected    bool                  `json:"connected"`
	ServiceError string                `json:"service_error,omitempty"`
	Totals       FleetTotals           `json:"totals"`
	Registers    []FleetRow            `json:"registers"`
	DoubleSpends []hqstore.DoubleSpend `json:"double_spends"`
	// Erasures are the member erasures some register has not confirmed
	// yet (docs/hq.md "Erasing a member"), oldest first.
	Erasures []FleetErasure `json:"erasures_pending"`
	Errors   []string       `json:"errors,omitempty"` // store reads that failed
	Service  hq.Status      `json:"-"`
}

// fleetWatch remembers when head office's watermark of each register last
// moved, so "online with events pending and nothing arriving" is measured
// from the store, whichever worker applied the events.
type fleetWatch struct {
	mu      stdsync.Mutex
	started time.Time
	last    map[string]watchEntry
}

type watchEntry struct {
	wm uint64
	at time.Time
}

func newFleetWatch(now time.Time) *fleetWatch {
	return &fleetWatch{started: now, last: map[string]watchEntry{}}
}

// moved records wm for register at now and returns when it last moved
// (the watch's start for a register first seen).
func (w *fleetWatch) moved(register string, wm uint64, now time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.last[register]
	switch {
	case !ok:
		e = watchEntry{wm: wm, at: w.started}
		if wm > 0 {
			e.at = now
		}
	case wm != e.wm:
		e = watchEntry{wm: wm, at: now}
	}
	w.last[register] = e
	return e.at
}

// fleetDoc puts the store's registers, the registers' statuses, held
// events and double spends together.
func fleetDoc(st hqstore.Views, svc *hq.Service, watch *fleetWatch, silence time.Duration, now time.Time) FleetDoc {
	doc := FleetDoc{At: now, Service: svc.Status(), Registers: []FleetRow{}, DoubleSpends: []hqstore.DoubleSpend{}}
	doc.Connected, doc.ServiceError = doc.Service.Connected, doc.Service.LastError
	regs, err := st.Registers()
	if err != nil {
		doc.Errors = append(doc.Errors, "registers: "+err.Error())
	}
	rows := map[string]*FleetRow{}
	row := func(store, register string) *FleetRow {
		r := rows[register]
		if r == nil {
			r = &FleetRow{Store: store, Register: register, State: "unknown"}
			rows[register] = r
		}
		return r
	}
	for _, rs := range regs {
		r := row(rs.Store, rs.Register)
		r.Watermark = rs.Watermark
		r.Held = rs.Review
		r.LastSeen = watch.moved(rs.Register, rs.Watermark, now)
		if rs.Watermark == 0 {
			r.LastSeen = time.Time{}
		}
	}
	if held, err := st.Review(); err == nil {
		n := map[string]uint64{}
		for _, h := range held {
			r := row(h.Store, h.Register)
			if r.Reason == "" {
				r.Reason = h.Reason
			}
			n[h.Register]++
		}
		for reg, c := range n {
			if rows[reg].Held == 0 {
				rows[reg].Held = c
			}
		}
	} else {
		doc.Errors = append(doc.Errors, "review: "+err.Error())
	}
	storeOf := map[string]string{}
	for _, rs := range regs {
		storeOf[rs.Register] = rs.Store
	}
	for _, f := range fleetByRegister(svc.Fleet(), storeOf) {
		r := row(f.Store, f.Register)
		if r.Store == "" {
			r.Store = f.Store
		}
		if f.At.After(r.LastSeen) {
			r.LastSeen = f.At
		}
		if f.Status == nil {
			r.LastError = "status refused: " + f.Refused
			continue
		}
		s := f.Status
		r.State, r.Pending, r.Software = s.State, s.Pending, s.Software
		r.LastSeq = s.Watermark + s.Pending
		if s.Config != nil {
			r.ConfigChain, r.ConfigStore = s.Config.Chain, s.Config.Store
		}
		r.LastError = cmp.Or(s.LastError, prefixed("config refused: ", s.ConfigError), prefixed("summaries refused: ", s.MembersError))
		r.Takeover = f.Takeover
		switch {
		case f.Takeover != "":
			r.Diagnosis = f.Takeover
		case s.Fault != "":
			r.Diagnosis = "the register says: " + s.Fault
		case s.State == "online" && s.Pending > 0 && r.LastSeq > r.Watermark:
			since := watch.moved(f.Register, r.Watermark, now)
			if d := now.Sub(since); d >= silence {
				r.Diagnosis = fmt.Sprintf("online with %d events pending, and head office's watermark has not moved for %s: "+
					"check this register's certificate identity (or user name) and the broker's ACL, which drops what it does not allow without a word",
					s.Pending, d.Truncate(time.Second))
			}
		}
	}
	for _, r := range rows {
		if r.LastSeq > r.Watermark {
			r.Lag = r.LastSeq - r.Watermark
		}
		if r.Held > 0 && r.Diagnosis == "" {
			r.Diagnosis = fmt.Sprintf("%d events held for review (%s): see GET /review and docs/operations.md", r.Held, r.Reason)
		}
		doc.Registers = append(doc.Registers, *r)
		t := &doc.Totals
		t.Registers++
		switch r.State {
		case "online":
			t.Online++
		case "offline":
			t.Offline++
		}
		t.Pending += r.Pending
		t.Lag += r.Lag
		t.Held += r.Held
		if r.Diagnosis != "" {
			t.Diagnosed++
		}
		if r.Takeover != "" {
			t.TakenOver++
		}
	}
	slices.SortFunc(doc.Registers, func(a, b FleetRow) int {
		return cmp.Or(cmp.Compare(a.Store, b.Store), cmp.Compare(a.Register, b.Register))
	})
	if ds, err := st.DoubleSpends(); err == nil {
		if ds != nil {
			doc.DoubleSpends = ds
		}
	} else {
		doc.Errors = append(doc.Errors, "double spends: "+err.Error())
	}
	doc.Totals.DoubleSpends = len(doc.DoubleSpends)
	doc.Erasures = []FleetErasure{}
	if er, ok := st.(hqstore.Erasures); ok {
		if es, err := er.Erasures(); err == nil {
			for _, e := range es {
				if p := e.Pending(); len(p) > 0 {
					doc.Erasures = append(doc.Erasures, FleetErasure{N: e.N, Member: e.Member, Pending: p})
				}
			}
		} else {
			doc.Errors = append(doc.Errors, "erasures: "+err.Error())
		}
	}
	doc.Totals.Applied = doc.Service.Applied
	return doc
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

//go:embed fleet.html
var fleetHTML string

var fleetPage = template.Must(template.New("fleet").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Truncate(time.Second).String() + " ago"
	},
}).Parse(fleetHTML))

// fleetHandlers serves the page (GET /) and its data (GET /fleet).
func fleetHandlers(mux *http.ServeMux, doc func() FleetDoc) {
	mux.HandleFunc("GET /fleet", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(doc())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Header().Set("X-Frame-Options", "DENY")
		if err := fleetPage.Execute(w, doc()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

// fleetByRegister picks the status the fleet page shows for each register
// id, in register order: the one sent under the store head office has
// the register in (after a move the old store's retained status stays on
// the broker, and used to win or lose by store name), else the latest.
func fleetByRegister(fl []hq.FleetRegister, storeOf map[string]string) []hq.FleetRegister {
	best := map[string]hq.FleetRegister{}
	for _, f := range fl {
		b, ok := best[f.Register]
		switch {
		case !ok:
		case (b.Store == storeOf[f.Register]) != (f.Store == storeOf[f.Register]):
			if b.Store == storeOf[f.Register] {
				continue
			}
		case !f.At.After(b.At):
			continue
		}
		best[f.Register] = f
	}
	out := make([]hq.FleetRegister, 0, len(best))
	for _, f := range best {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b hq.FleetRegister) int { return cmp.Compare(a.Register, b.Register) })
	return out
}
