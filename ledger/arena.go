package ledger

// arena hands out the byte slices one write transaction stores (keys and
// values of the rows a sale writes) from blocks of a page each instead of
// a heap object each: a sale wrote about twenty small ones (a sale uses
// about 1 KB of a block). A slice it gave out is never handed out again,
// and bbolt keeps the values it is given until the commit, so the blocks
// live as long as the transaction holds them. A nil *arena allocates each
// slice apart.
type arena struct {
	free []byte // what is left of the current block
}

const (
	arenaBlock = 4 << 10
	arenaMax   = 1 << 10 // a slice larger than this is allocated apart
)

// make returns an empty slice with room for n bytes; appending past n
// moves it to the heap, as for any slice.
func (a *arena) make(n int) []byte {
	if a == nil || n > arenaMax {
		return make([]byte, 0, n)
	}
	if len(a.free) < n {
		a.free = make([]byte, arenaBlock)
	}
	b := a.free[:0:n]
	a.free = a.free[n:]
	return b
}

// rowKey is rowKey (ledger.go) in a's memory.
func (a *arena) rowKey(kind byte, id string, seq uint64) []byte {
	return appendRowKey(a.make(len(id)+2+8), kind, id, seq)
}
