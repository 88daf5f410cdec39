package hqstore_test

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

func inc(e hqstore.Event, id string) hqstore.Event { e.Incarnation = id; return e }

// Events of a second ledger incarnation under one register id (a replaced
// card, a restored backup, a copied config) are held for review, never
// applied over the first or dropped in silence, and the ack that may go to
// each names its own watermark.
func TestIncarnationsHeldForReview(t *testing.T) {
	tests := []struct {
		name   string
		first  string // incarnation of events 1..3
		second string // incarnation of the events that follow
		seqs   []uint64
		held   int
		reason string
	}{
		{"second incarnation reusing numbers", "aaaa", "bbbb", []uint64{1, 2}, 2, hqstore.ReviewIncarnation},
		{"second incarnation continuing numbers", "aaaa", "bbbb", []uint64{4}, 1, hqstore.ReviewIncarnation},
		{"legacy ledger then a new one from 1", "", "bbbb", []uint64{1}, 1, hqstore.ReviewIncarnation},
		{"legacy register upgraded carries on", "", "bbbb", []uint64{4, 5}, 0, ""},
		{"legacy register upgraded resends a duplicate", "", "bbbb", []uint64{3, 4}, 0, ""},
		{"same incarnation", "aaaa", "aaaa", []uint64{4}, 0, ""},
		{"legacy sender after a bound incarnation", "aaaa", "", []uint64{4}, 1, hqstore.ReviewIncarnation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t, nil)
			apply(t, s, inc(earn("r1", 1, "m1", 10), tc.first), inc(earn("r1", 2, "m1", 10), tc.first), inc(earn("r1", 3, "m1", 10), tc.first))
			var evs []hqstore.Event
			for _, q := range tc.seqs {
				pts := int64(100)
				if q <= 3 && tc.reason == "" {
					pts = 10 // a resend: the same content
				}
				evs = append(evs, inc(earn("r1", q, "m1", ledger.Points(pts)), tc.second))
			}
			res := apply(t, s, evs...)
			if res.Reviewed != tc.held {
				t.Fatalf("reviewed %d, want %d: %+v", res.Reviewed, tc.held, res)
			}
			held, err := s.Review()
			if err != nil || len(held) != tc.held {
				t.Fatalf("review %+v %v", held, err)
			}
			want := int64(30)
			if tc.held == 0 {
				for _, q := range tc.seqs {
					if q > 3 {
						want += 100
					}
				}
			}
			if got := balance(t, s, "m1"); int64(got) != want {
				t.Fatalf("balance %d, want %d", got, want)
			}
			if tc.held == 0 {
				return
			}
			h := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: tc.second}]
			if h.Reason != tc.reason || h.Watermark != 0 || h.Held != uint64(tc.held) || h.Text == "" {
				t.Fatalf("hold %+v", h)
			}
			if wm(t, s, "r1") != 3 {
				t.Fatalf("watermark %d", wm(t, s, "r1"))
			}
			// A resend of the same held events holds nothing twice.
			res = apply(t, s, evs...)
			if res.Reviewed != 0 || res.Holds[h.Stream].Held != uint64(tc.held) {
				t.Fatalf("resend: %+v", res)
			}
		})
	}
}

// A restored ledger (same incarnation) that sends other content under an
// applied number is held, and the watermark it may be told stops below it.
func TestReusedSequenceHeld(t *testing.T) {
	s, _ := open(t, nil)
	apply(t, s, inc(earn("r1", 1, "m1", 10), "aaaa"), inc(earn("r1", 2, "m1", 10), "aaaa"), inc(earn("r1", 3, "m1", 10), "aaaa"))
	res := apply(t, s, inc(earn("r1", 2, "m1", 10), "aaaa"), inc(earn("r1", 3, "m1", 77), "aaaa"))
	h := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "aaaa"}]
	if res.Reviewed != 1 || h.Reason != hqstore.ReviewReused || h.Watermark != 2 || len(res.Conflicts) != 1 {
		t.Fatalf("%+v", res)
	}
	if got := balance(t, s, "m1"); got != 30 {
		t.Fatalf("balance %d", got)
	}
}
