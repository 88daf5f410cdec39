package hqstore_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// Apply a batch, acknowledge the watermark, read the chain-wide balance.
func Example() {
	dir, _ := os.MkdirTemp("", "hqstore")
	defer os.RemoveAll(dir)
	st, err := hqstore.Open(filepath.Join(dir, "hq.db"), nil)
	if err != nil {
		panic(err)
	}
	defer st.Close()
	point := func(reg string, seq uint64, pts ledger.Points) hqstore.Event {
		data := fmt.Sprintf(`{"member_id":"m1","kind":"earn","points":%d}`, pts)
		return hqstore.Event{Register: reg, Store: "s1", OutboxRecord: ledger.OutboxRecord{
			Seq: seq, ID: fmt.Sprintf("%s-%d", reg, seq), Type: ledger.OutPoints, Data: []byte(data)}}
	}
	// Event 2 arrives first: it is held, and the gap is reported.
	res, _ := st.Apply([]hqstore.Event{point("r1", 2, 5)})
	fmt.Println("watermark", res.Registers["r1"].Watermark, "gap", res.Registers["r1"].Gap)
	res, _ = st.Apply([]hqstore.Event{point("r1", 1, 10), point("r1", 2, 5)})
	fmt.Println("watermark", res.Registers["r1"].Watermark, "gap", res.Registers["r1"].Gap, "duplicates", res.Duplicates)
	bal, _ := st.Balance("m1")
	fmt.Println("balance", bal)
	// Output:
	// watermark 0 gap true
	// watermark 2 gap false duplicates 1
	// balance 15
}
