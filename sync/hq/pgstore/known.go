package pgstore

import "sync"

// known remembers facts about rows that only ever grow, as this process
// saw them committed, so ingest need not read them again: that a member's
// row exists, that a register's row exists, and the latest time a member
// was recorded at a store (hq_shops.at only moves forward). Rows of
// hq_members, hq_registers and hq_shops are never deleted, so a
// remembered fact stays true whatever other workers do; a fact not
// remembered is written as if it were new (ON CONFLICT), never assumed.
// When full it forgets everything and fills again.
type known struct {
	mu  sync.Mutex
	max int
	m   map[string]int64
}

func newKnown(max int) *known { return &known{max: max, m: map[string]int64{}} }

// get returns the value remembered for k.
func (k *known) get(key string) (int64, bool) {
	k.mu.Lock()
	v, ok := k.m[key]
	k.mu.Unlock()
	return v, ok
}

// add remembers keys[i] -> vals[i] (vals nil: 0), keeping the larger
// value of a key already there.
func (k *known) add(keys []string, vals []int64) {
	if len(keys) == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m)+len(keys) > k.max {
		clear(k.m)
	}
	for i, key := range keys {
		var v int64
		if vals != nil {
			v = vals[i]
		}
		if was, ok := k.m[key]; !ok || v > was {
			k.m[key] = v
		}
	}
}
