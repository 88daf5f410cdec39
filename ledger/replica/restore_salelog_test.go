package replica_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/replica"
)

// TestRestoreBesideOldSaleLog: a damaged ledger.db is moved away
// (as operations.md says) but ledger.db.salelog stays; restore-replica
// builds ledger.db from the snapshot and the copied events. The restored
// file has the same incarnation and reaches a bbolt txid the crashed
// ledger's last cycle also started from: Open applies the crashed log's
// records (written against another history) to it.
func TestRestoreBesideOldSaleLog(t *testing.T) {
	for k := range 5 {
		t.Run(fmt.Sprintf("checkpoints=%d", k), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "ledger.db")
			o := opts()
			o.SaleLogInterval = time.Hour
			l, err := ledger.Open(path, o)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			sell(t, l, "a", 3)
			rep := t.TempDir()
			f, err := os.Create(filepath.Join(rep, replica.SnapshotName))
			if err != nil {
				t.Fatal(err)
			}
			si, err := l.Snapshot(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			for i := range k {
				sell(t, l, fmt.Sprintf("b%d-", i), 1)
				if _, err := l.Backup(io.Discard); err != nil { // a checkpoint
					t.Fatal(err)
				}
			}
			sell(t, l, "c", 2) // pending in the sale log at the crash
			// The replica log: every event after the snapshot.
			recs, err := l.Outbox(si.Seq, 1000)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := json.Marshal(map[string]any{"incarnation": si.Incarnation, "after": si.Seq})
			lines := append(h, '\n')
			for _, r := range recs {
				b, _ := json.Marshal(r)
				lines = append(append(lines, b...), '\n')
			}
			if err := os.WriteFile(filepath.Join(rep, replica.LogName), lines, 0o600); err != nil {
				t.Fatal(err)
			}
			// The crash: ledger.db is damaged and moved away; the log stays.
			site := t.TempDir()
			npath := filepath.Join(site, "ledger.db")
			b, err := os.ReadFile(path + ".salelog")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(npath+".salelog", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := replica.Restore(rep, npath, opts()); err != nil {
				t.Fatal(err)
			}
			r, err := ledger.Open(npath, opts())
			if err != nil {
				t.Fatalf("the restored ledger does not open: %v", err)
			}
			defer r.Close()
			if err := r.Check(); err != nil {
				t.Errorf("the restored ledger opened beside the old sale log fails Check: %v", err)
			}
		})
	}
}
