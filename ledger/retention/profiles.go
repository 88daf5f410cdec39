package retention

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// CategoryRhythm is a member's rhythm in one category.
type CategoryRhythm struct {
	Category string
	Rhythm
}

// MarshalJSON writes the category beside the rhythm's fields,
// {"Category":...,"purchase_days":...}: without it the embedded Rhythm's
// MarshalJSON would be promoted and drop the category.
func (c CategoryRhythm) MarshalJSON() ([]byte, error) {
	r, err := c.Rhythm.MarshalJSON()
	if err != nil {
		return nil, err
	}
	cat, err := json.Marshal(c.Category)
	if err != nil {
		return nil, err
	}
	out := append(append([]byte(`{"Category":`), cat...), ',')
	return append(out, r[1:]...), nil // r is a non-empty object
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *CategoryRhythm) UnmarshalJSON(b []byte) error {
	var cat struct{ Category string }
	if err := json.Unmarshal(b, &cat); err != nil {
		return err
	}
	var r Rhythm
	if err := r.UnmarshalJSON(b); err != nil {
		return err
	}
	*c = CategoryRhythm{Category: cat.Category, Rhythm: r}
	return nil
}

// CategoryRhythms are a member's rhythms per category, sorted by
// category. In JSON they are an object keyed by category, in that order.
type CategoryRhythms []CategoryRhythm

// Get returns the rhythm in category c.
func (cs CategoryRhythms) Get(c string) (Rhythm, bool) {
	i, ok := slices.BinarySearchFunc(cs, c, func(r CategoryRhythm, c string) int { return strings.Compare(r.Category, c) })
	if !ok {
		return Rhythm{}, false
	}
	return cs[i].Rhythm, true
}

// MarshalJSON writes {"category": rhythm, ...}, as a map keyed by
// category would be written.
func (cs CategoryRhythms) MarshalJSON() ([]byte, error) {
	if cs == nil {
		return []byte("null"), nil
	}
	b := []byte{'{'}
	for i := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(cs[i].Category)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(&cs[i].Rhythm)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (cs *CategoryRhythms) UnmarshalJSON(b []byte) error {
	var m map[string]Rhythm
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		*cs = nil
		return nil
	}
	out := make(CategoryRhythms, 0, len(m))
	for c, r := range m {
		out = append(out, CategoryRhythm{Category: c, Rhythm: r})
	}
	slices.SortFunc(out, func(x, y CategoryRhythm) int { return strings.Compare(x.Category, y.Category) })
	*cs = out
	return nil
}

// uniqueIDs reports the first member id listed twice. Head office's store
// and the file readers list members sorted by id, which shows uniqueness
// without a set.
func uniqueIDs(members []Member) error {
	// Sorted in each part (over the processors) and at the seams.
	parts := partsFor(len(members))
	unsorted := make([]bool, parts)
	inParts(len(members), parts, func(k, lo, hi int) {
		for i := max(lo, 1); i < hi; i++ {
			if members[i-1].ID >= members[i].ID {
				unsorted[k] = true
				return
			}
		}
	})
	if !slices.Contains(unsorted, true) {
		return nil
	}
	seen := make(map[string]struct{}, len(members))
	for i := range members {
		if _, ok := seen[members[i].ID]; ok {
			return fmt.Errorf("%w: member %q listed twice", ErrInvalid, members[i].ID)
		}
		seen[members[i].ID] = struct{}{}
	}
	return nil
}

// rhythms computes the rhythms of a population's members, reusing its
// scratch space from member to member.
type rhythms struct {
	gaps []float64
	// cats are the current member's categories (the first n in use), each
	// with its purchase days; byName finds them when a member has many.
	cats   []catDays
	n      int
	byName map[string]int
	// slab: the members' category rhythms are cut from shared chunks.
	slab []CategoryRhythm
}

type catDays struct {
	name string
	days []Day
}

// linearCats is the number of categories up to which a member's are
// found by a linear scan rather than a map.
const linearCats = 16

// categories returns the rhythm of each category in h, sorted by category.
func (rh *rhythms) categories(h History) CategoryRhythms {
	for i, cats := range h.Cats {
		for _, c := range cats {
			rh.add(c, h.Days[i])
		}
	}
	return rh.take()
}

// categoriesOf is categories of the history cleaning kept in days (its
// sales by day, ascending) from the member's purchases ps, read from the
// sales themselves: Analyze's cleaning makes no per-day lists of
// categories (scratch space of strings to clear for every member, each
// write one the collector may watch). Empty names are left out and a
// category bought twice on a day counts the day once, as cleaning's
// per-day lists do.
func (rh *rhythms) categoriesOf(days []cleanDay, ps []Purchase) CategoryRhythms {
	for k := range days {
		for _, c := range ps[days[k].sale].Categories {
			if c != "" {
				rh.add(c, days[k].d)
			}
		}
	}
	return rh.take()
}

// add notes that the current member bought category c on day d, no
// earlier than any day added before.
func (rh *rhythms) add(c string, d Day) {
	j := -1
	if rh.n <= linearCats {
		for k := range rh.n {
			if rh.cats[k].name == c {
				j = k
				break
			}
		}
	} else if k, ok := rh.byName[c]; ok {
		j = k
	}
	if j < 0 {
		j = rh.n
		if rh.n == len(rh.cats) {
			rh.cats = append(rh.cats, catDays{})
		}
		rh.cats[j].name, rh.cats[j].days = c, rh.cats[j].days[:0]
		rh.n++
		if rh.n == linearCats+1 {
			if rh.byName == nil {
				rh.byName = map[string]int{}
			}
			clear(rh.byName)
			for k := range rh.n {
				rh.byName[rh.cats[k].name] = k
			}
		} else if rh.n > linearCats+1 {
			rh.byName[c] = j
		}
	}
	if days := rh.cats[j].days; len(days) == 0 || days[len(days)-1] != d {
		rh.cats[j].days = append(days, d)
	}
}

// take returns the rhythm of each category added since the last take,
// sorted by category, and starts the next member.
func (rh *rhythms) take() CategoryRhythms {
	n := rh.n
	rh.n = 0
	if n == 0 {
		return nil
	}
	cats := rh.cats[:n]
	out := rh.alloc(n)
	if n <= linearCats {
		// A member's few categories, distinct: their indexes sorted by
		// insertion, without sort's calls through a comparison function
		// and without moving the entries (strings and slices, each move
		// a write the collector may have to watch).
		var order [linearCats]uint8
		for i := range n {
			order[i] = uint8(i)
		}
		for i := 1; i < n; i++ {
			for j := i; j > 0 && cats[order[j]].name < cats[order[j-1]].name; j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
		for j, k := range order[:n] {
			out[j].Category = cats[k].name
			out[j].Rhythm, rh.gaps = rhythmOf(cats[k].days, rh.gaps)
		}
		return out
	}
	slices.SortFunc(cats, func(x, y catDays) int { return strings.Compare(x.name, y.name) })
	for j := range cats {
		out[j].Category = cats[j].name
		out[j].Rhythm, rh.gaps = rhythmOf(cats[j].days, rh.gaps)
	}
	return out
}

// slabCats is the number of category rhythms per shared chunk.
const slabCats = 1 << 12

func (rh *rhythms) alloc(n int) CategoryRhythms {
	if n > slabCats/8 {
		return make(CategoryRhythms, n)
	}
	if len(rh.slab) < n {
		rh.slab = make([]CategoryRhythm, slabCats)
	}
	out := rh.slab[:n:n]
	rh.slab = rh.slab[n:]
	return out
}

// predictor fills the model's predictions into profiles. Members with the
// same (purchase days, recency, age) in whole days share the same BG/NBD
// summary and so the same predictions: those are computed once each, over
// the processors. The part of them that does not depend on the recency
// (bgnbd.Horizon: the hypergeometric function) is computed once per
// distinct (purchase days, age), fewer still.
type predictor struct {
	model   bgnbd.Params
	horizon float64
	asOf    Day
	// known holds the distinct predictions, found by key in an
	// open-addressing table of indexes (0: empty) kept at most half full;
	// ages holds the distinct (purchase days, age) and ageSlots finds
	// them likewise.
	known    []prediction
	slots    []int32
	ages     []ageHorizon
	ageSlots []int32
	// failed holds the errors of the predictions marked failed (none in
	// practice: a summary made from a rhythm is valid).
	failed map[int32]error
	// counts holds the members of each known prediction; buyers counts
	// the members with a purchase, own those with a prediction of their
	// own (-2).
	counts      []int32
	buyers, own int
}

type prediction struct {
	key                     uint64
	age                     int32 // index into ages
	failed                  bool  // its error is in predictor.failed
	pAlive, pNone, expected float64
}

// ageHorizon is a distinct (purchase days, age) with its horizon part.
type ageHorizon struct {
	key   uint64 // purchase days less one and age in days (ageKey)
	first int32  // the first prediction with them
	h     bgnbd.Horizon
}

// customer is the BG/NBD summary of the members whose key is pred's, as
// Analyze computes it from their rhythm (weeks from days).
func (pred *prediction) customer() bgnbd.Customer {
	const mask = 1<<predictKeyBits - 1
	x, rec, age := int(pred.key>>(2*predictKeyBits)), Day(pred.key>>predictKeyBits&mask), Day(pred.key&mask)
	return bgnbd.Customer{X: x, Tx: float64(rec) / 7, T: float64(age) / 7}
}

// predictKeyBits is the width of each field of a prediction's key.
const predictKeyBits = 21

// ageKey is the key of the (purchase days, age) of a prediction's key.
func ageKey(key uint64) uint64 {
	const mask = 1<<predictKeyBits - 1
	return key>>(2*predictKeyBits)<<predictKeyBits | key&mask
}

// indexAll returns which distinct prediction each member takes (-1: none,
// -2: its own, for a summary beyond the key's range), from the keys of
// their summaries (keyOf), and counts the buyers, the members of each
// distinct summary and those with their own; the model is not needed
// yet.
func (pr *predictor) indexAll(keys []uint64) []int32 {
	which := make([]int32, len(keys))
	if pr.known == nil {
		// At most one distinct prediction per member: allocated once.
		pr.known = make([]prediction, 0, len(keys))
		pr.slots = make([]int32, tableSize(len(keys)))
		pr.counts = make([]int32, 0, len(keys))
	}
	for i, key := range keys {
		j := pr.index(key)
		which[i] = j
		switch {
		case j >= 0:
			pr.counts[j]++
			pr.buyers++
		case j == -2:
			pr.own++
			pr.buyers++
		}
	}
	return which
}

// grouped is the buyers' summaries folded as the fit takes them
// (bgnbd.Grouped), from which distinct prediction each member takes:
// the distinct predictions are in the order of their first member, as
// the fit would fold them. Only when no member has a summary of its own
// (pr.own).
func (pr *predictor) grouped(which []int32) bgnbd.Grouped {
	g := bgnbd.Grouped{All: make([]bgnbd.Group, len(pr.known))}
	for j := range pr.known {
		g.All[j] = bgnbd.Group{Customer: pr.known[j].customer(), N: int(pr.counts[j])}
	}
	// Every tenth buyer, in member order, folded the same way; at[j] is
	// the place of distinct prediction j in the tenth's groups, plus 1.
	at := make([]int32, len(pr.known))
	g.Tenth = make([]bgnbd.Group, 0, pr.buyers/10+1)
	buyer := 0
	for _, j := range which {
		if j < 0 {
			continue
		}
		if buyer%10 == 0 {
			if k := at[j]; k > 0 {
				g.Tenth[k-1].N++
			} else {
				g.Tenth = append(g.Tenth, bgnbd.Group{Customer: g.All[j].Customer, N: 1})
				at[j] = int32(len(g.Tenth))
			}
		}
		buyer++
	}
	return g
}

// tableSize is the size of an open-addressing table for n keys: a power
// of two, at least 1024 and twice n.
func tableSize(n int) int {
	size := 1024
	for size < 2*n {
		size <<= 1
	}
	return size
}

// predictAll fills the predictions of every profile with a purchase, which
// indexAll said, and then calls then on every profile (in the same pass
// over them). The first member (in order) whose prediction fails names
// the error.
func (pr *predictor) predictAll(ps []Profile, which []int32, then func(*Profile)) error {
	// The distinct (purchase days, age) first, then each distinct
	// prediction from its own.
	pr.indexAges()
	inParts(len(pr.ages), partsFor(len(pr.ages)), func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			a := &pr.ages[j]
			c := pr.known[a.first].customer()
			a.h = pr.model.AtHorizon(c.X, c.T, pr.horizon)
		}
	})
	knownParts := partsFor(len(pr.known))
	knownErrs := make([][]predictionError, knownParts)
	inParts(len(pr.known), knownParts, func(k, lo, hi int) {
		for j := lo; j < hi; j++ {
			pred := &pr.known[j]
			if err := pred.predict(pred.customer(), pr.model, &pr.ages[pred.age].h); err != nil {
				pred.failed = true
				knownErrs[k] = append(knownErrs[k], predictionError{int32(j), err})
			}
		}
	})
	for _, errs := range knownErrs {
		for _, e := range errs {
			if pr.failed == nil {
				pr.failed = map[int32]error{}
			}
			pr.failed[e.known] = e.err
		}
	}
	// Applied over the processors too; the first error of the lowest part
	// is the first in member order.
	parts := partsFor(len(ps))
	errs := make([]error, parts)
	inParts(len(ps), parts, func(k, lo, hi int) {
		for i := lo; i < hi; i++ {
			p := &ps[i]
			var err error
			switch j := which[i]; j {
			case -1:
			case -2:
				var pred prediction
				if err = pred.compute(customerOf(&p.Rhythm, pr.asOf), pr.model, pr.horizon); err == nil {
					pred.apply(p)
				}
			default:
				if pr.known[j].failed {
					err = pr.failed[j]
				} else {
					pr.known[j].apply(p)
				}
			}
			if err != nil {
				errs[k] = fmt.Errorf("member %s: %w", p.MemberID, err)
				return
			}
			then(p)
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// indexAges fills ages with the distinct (purchase days, age) of the
// known predictions, in order of first appearance, and each prediction's
// index into them. They are far fewer than the predictions (17,500 against
// 137,000 on the benchmark's population, counted by hand): the table starts small and
// grows, and ages is allocated once their number is known.
func (pr *predictor) indexAges() {
	type first struct {
		key   uint64
		known int32
	}
	firsts := make([]first, 0, len(pr.known)/8)
	pr.ageSlots = make([]int32, tableSize(len(pr.known)/8))
	keyOf := func(j int32) uint64 { return firsts[j].key }
	for i := range pr.known {
		if 2*(len(firsts)+1) > len(pr.ageSlots) {
			pr.ageSlots = make([]int32, 2*len(pr.ageSlots))
			for j := range firsts {
				pr.placeAge(firsts[j].key, int32(j+1), keyOf)
			}
		}
		key := ageKey(pr.known[i].key)
		j, ok := pr.placeAge(key, int32(len(firsts)+1), keyOf)
		if !ok {
			firsts = append(firsts, first{key, int32(i)})
		}
		pr.known[i].age = j - 1
	}
	pr.ages = make([]ageHorizon, len(firsts))
	for j, f := range firsts {
		pr.ages[j] = ageHorizon{key: f.key, first: f.known}
	}
}

// placeAge returns the slot value (index + 1) of the age key, or puts
// next there: ok is false and next is returned. keyOf(j) is the key of
// index j.
func (pr *predictor) placeAge(key uint64, next int32, keyOf func(int32) uint64) (int32, bool) {
	mask := uint64(len(pr.ageSlots) - 1)
	for h := mixKey(key) & mask; ; h = (h + 1) & mask {
		j := pr.ageSlots[h]
		if j == 0 {
			pr.ageSlots[h] = next
			return next, false
		}
		if keyOf(j-1) == key {
			return j, true
		}
	}
}

// Keys of members without a summary key (keyOf): no purchase, or a
// summary beyond the key's range. A key proper is below 1<<63.
const (
	keyNone = math.MaxUint64
	keyOwn  = math.MaxUint64 - 1
)

// keyOf is the key of the BG/NBD summary of rhythm r as of asOf: purchase
// days less one, recency and age in days, predictKeyBits each; keyNone
// without a purchase, keyOwn for a summary beyond that range.
func keyOf(r *Rhythm, asOf Day) uint64 {
	if r.PurchaseDays == 0 {
		return keyNone
	}
	x, rec, age := r.PurchaseDays-1, int(r.Last-r.First), int(asOf-r.First)
	const lim = 1 << predictKeyBits
	if x < 0 || x >= lim || rec < 0 || rec >= lim || age < 0 || age >= lim {
		return keyOwn
	}
	return uint64(x)<<(2*predictKeyBits) | uint64(rec)<<predictKeyBits | uint64(age)
}

// index returns the index in known of the prediction of key (keyOf),
// adding it (not yet computed) when it is new; -1 for keyNone, -2 for
// keyOwn.
func (pr *predictor) index(key uint64) int32 {
	switch key {
	case keyNone:
		return -1
	case keyOwn:
		return -2
	}
	if 2*(len(pr.known)+1) > len(pr.slots) {
		pr.grow()
	}
	mask := uint64(len(pr.slots) - 1)
	for h := mixKey(key) & mask; ; h = (h + 1) & mask {
		j := pr.slots[h]
		if j == 0 {
			pr.known = append(pr.known, prediction{key: key})
			pr.counts = append(pr.counts, 0)
			pr.slots[h] = int32(len(pr.known))
			return int32(len(pr.known) - 1)
		}
		if pr.known[j-1].key == key {
			return j - 1
		}
	}
}

// mixKey spreads a prediction or age key over the bits of an
// open-addressing table's slot index (Fibonacci hashing).
func mixKey(key uint64) uint64 {
	h := key * 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// grow doubles the table and places the known predictions again.
func (pr *predictor) grow() {
	n := max(1024, 2*len(pr.slots))
	pr.slots = make([]int32, n)
	mask := uint64(n - 1)
	for i := range pr.known {
		h := mixKey(pr.known[i].key) & mask
		for pr.slots[h] != 0 {
			h = (h + 1) & mask
		}
		pr.slots[h] = int32(i + 1)
	}
}

// predictionError is the error of the prediction known[known].
type predictionError struct {
	known int32
	err   error
}

// compute fills the predictions for summary c; an expectation the special
// functions cannot evaluate is 0, any other error is returned.
func (pred *prediction) compute(c bgnbd.Customer, model bgnbd.Params, horizon float64) error {
	pred.pAlive, pred.pNone = model.PAlive(c), model.PNoPurchase(c, horizon)
	if e, err := model.ExpectedPurchases(c, horizon); err == nil {
		pred.expected = e
	} else if !errors.Is(err, bgnbd.ErrNumeric) {
		return err
	}
	return nil
}

// predict fills the predictions for summary c from h, the horizon part
// of c's (purchase days, age): the same values and error compute gives.
func (pred *prediction) predict(c bgnbd.Customer, model bgnbd.Params, h *bgnbd.Horizon) error {
	var err error
	pred.pAlive, pred.pNone, pred.expected, err = model.Predict(c, h)
	if err != nil && !errors.Is(err, bgnbd.ErrNumeric) {
		return err
	}
	return nil
}

func (pred *prediction) apply(p *Profile) {
	p.PAlive, p.PNone, p.Expected = pred.pAlive, pred.pNone, pred.expected
}
