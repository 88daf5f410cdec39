package manager

import (
	"fmt"
	"io"
	"sort"

	"github.com/loyalty-terminal/loyalty/device"
)

// WriteMetrics writes every device's health in the Prometheus text
// format: loyalty_device_up{device} (1 healthy, 0 not),
// loyalty_device_state{device,state} (1 for the current state),
// loyalty_device_reopens_total{device}, loyalty_device_frames_total{device},
// loyalty_device_rejects_total{device,reason} and
// loyalty_device_faults_total{device,kind}. Labels are device names and
// fixed reason labels, never input.
func WriteMetrics(w io.Writer, hs []device.Health) {
	for _, h := range hs {
		up := 0
		if h.State == device.StateHealthy {
			up = 1
		}
		fmt.Fprintf(w, "loyalty_device_up{device=%q} %d\n", h.Name, up)
		fmt.Fprintf(w, "loyalty_device_state{device=%q,state=%q} 1\n", h.Name, h.State)
		fmt.Fprintf(w, "loyalty_device_reopens_total{device=%q} %d\n", h.Name, h.Reopens)
		fmt.Fprintf(w, "loyalty_device_frames_total{device=%q} %d\n", h.Name, h.Frames)
		for _, k := range sortedKeys(h.Rejects) {
			fmt.Fprintf(w, "loyalty_device_rejects_total{device=%q,reason=%q} %d\n", h.Name, k, h.Rejects[k])
		}
		for _, k := range sortedKeys(h.Faults) {
			fmt.Fprintf(w, "loyalty_device_faults_total{device=%q,kind=%q} %d\n", h.Name, k, h.Faults[k])
		}
	}
}

// Degraded lists the devices that are configured and present but not
// working (unplugged, busy, a stuck display), by name with their last
// error. Devices skipped because this host lacks them, and devices still
// starting, are left out. The register still takes sales without them.
func Degraded(hs []device.Health) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		if h.State != device.StateUnhealthy && h.State != device.StateBusy {
			continue
		}
		if len(h.LastError) >= 8 && h.LastError[:8] == "skipped:" {
			continue
		}
		out[h.Name] = string(h.State) + ": " + h.LastError
	}
	return out
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
