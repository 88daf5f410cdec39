package ledger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
)

// BenchmarkSaleSDCard runs the sale path on the power-cut filesystem with
// a Raspberry Pi SD card's sync latency (powerfs.SDCard) and compares the
// median sale with the median synced 512-byte append on the same
// filesystem, interleaved in the same run. It reports the sale's p99 and
// the bytes written per sale (what wears the card): everything the ledger
// wrote during the loop, the sale log's appends and the checkpoints that
// took the sales into the file (one forced after the loop), not only what
// a sale's own call wrote.
func BenchmarkSaleSDCard(b *testing.B) {
	const n = 200
	f := powerfs.Mount(b, &powerfs.Options{Latency: powerfs.SDCard(), Seed: 1})
	ctx := context.Background()
	l := openBench(b, filepath.Join(f.Dir, "ledger.db"))
	for i := range 20 { // warm up: file growth, the space reserve
		if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("w%d", i), i)); err != nil {
			b.Fatal(err)
		}
	}
	fh, err := os.OpenFile(filepath.Join(f.Dir, "floor"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	buf := make([]byte, 512)
	saleLat, floorLat := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	var bytesWritten, syncs int64
	if err := l.exclusive(nil); err != nil { // start from a checkpoint
		b.Fatal(err)
	}
	ds0 := l.db.Stats()
	var fs0 powerfs.Stats
	for b.Loop() {
		saleLat, floorLat = saleLat[:0], floorLat[:0]
		if fs0, err = f.Stats(); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			t := time.Now()
			if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("s%d-%d", len(saleLat), i), i)); err != nil {
				b.Fatal(err)
			}
			saleLat = append(saleLat, time.Since(t))
			t = time.Now()
			if _, err := fh.Write(buf); err != nil {
				b.Fatal(err)
			}
			if err := syscall.Fdatasync(int(fh.Fd())); err != nil {
				b.Fatal(err)
			}
			floorLat = append(floorLat, time.Since(t))
		}
	}
	if err := l.exclusive(nil); err != nil { // the sales still in the log
		b.Fatal(err)
	}
	fs1, err := f.Stats()
	if err != nil {
		b.Fatal(err)
	}
	// Less the floor's own appends and syncs, which go to the same
	// filesystem.
	bytesWritten = fs1.BytesWritten - fs0.BytesWritten - int64(n*len(buf))
	syncs = fs1.Syncs - fs0.Syncs - n
	ds1 := l.db.Stats()
	pages := float64(ds1.TxStats.GetWrite()-ds0.TxStats.GetWrite()) / float64(len(saleLat))
	sorted := slices.Clone(saleLat)
	slices.Sort(sorted)
	p99 := sorted[len(sorted)*99/100]
	sale, floor := median(saleLat), median(floorLat)
	b.ReportMetric(float64(sale.Microseconds())/1000, "sale_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "sale_p99_ms")
	b.ReportMetric(float64(bytesWritten)/n, "bytes/sale")
	fmt.Printf("REPORT sale_median_ms_sdcard %.1f ms\n", float64(sale.Microseconds())/1000)
	fmt.Printf("REPORT sale_p99_ms_sdcard %.1f ms\n", float64(p99.Microseconds())/1000)
	fmt.Printf("REPORT sync_floor_median_ms_sdcard %.1f ms (512-byte append + fdatasync)\n", float64(floor.Microseconds())/1000)
	fmt.Printf("REPORT bytes_written_per_sale_sdcard %.0f bytes\n", float64(bytesWritten)/n)
	fmt.Printf("REPORT syncs_per_sale_sdcard %.2f\n", float64(syncs)/n)
	fmt.Printf("REPORT bbolt_pages_per_sale_sdcard %.1f pages of %d bytes\n", pages, l.db.Info().PageSize)
	fmt.Printf("RATIO sale_sdcard_vs_sync_floor %.2f\n", float64(sale)/float64(floor))
}
