package daemon

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// syncRefusedMetrics registers loyalty_sync_documents_refused_total{reason}:
// head office's documents (config, member summaries) the register refused
// since start, by reason (uplink.Refused). All zero without sync.
func syncRefusedMetrics(set *metrics.Set, up func() *uplink.Uplink) {
	uplink.Refused{}.Each(func(reason string, _ uint64) {
		set.NewGauge(fmt.Sprintf(`loyalty_sync_documents_refused_total{reason=%q}`, reason), func() float64 {
			u := up()
			if u == nil {
				return 0
			}
			var n uint64
			u.Status().Refused.Each(func(r string, v uint64) {
				if r == reason {
					n = v
				}
			})
			return float64(n)
		})
	})
}
