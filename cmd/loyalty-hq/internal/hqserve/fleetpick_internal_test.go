package hqserve

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestFleetByRegister: a register moved from s2 to s1 has two retained
// statuses on the broker; the fleet page shows the one of the store head
// office has it in, whichever store name sorts last and whichever came
// last (outside tester: the old store's stale "offline, 5" stayed on the
// page while the register was online at 7); with no store known, the
// latest.
func TestFleetByRegister(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	st := func(store, reg, state string, at time.Time) hq.FleetRegister {
		return hq.FleetRegister{Store: store, Register: reg, At: at, Status: &protocol.Status{Store: store, Register: reg, State: state}}
	}
	for _, tc := range []struct {
		name    string
		fleet   []hq.FleetRegister
		storeOf map[string]string
		want    string // store of the status shown
	}{
		{"moved to s1, old status later", []hq.FleetRegister{st("s1", "r2", "online", t0), st("s2", "r2", "offline", t0.Add(time.Minute))}, map[string]string{"r2": "s1"}, "s1"},
		{"moved to s1, old status first", []hq.FleetRegister{st("s2", "r2", "offline", t0), st("s1", "r2", "online", t0.Add(time.Minute))}, map[string]string{"r2": "s1"}, "s1"},
		{"moved to s3", []hq.FleetRegister{st("s3", "r2", "online", t0), st("s2", "r2", "offline", t0.Add(time.Minute))}, map[string]string{"r2": "s3"}, "s3"},
		{"not in the store: the latest", []hq.FleetRegister{st("s1", "r2", "offline", t0), st("s2", "r2", "online", t0.Add(time.Minute))}, nil, "s2"},
		{"not in the store: the latest, reversed", []hq.FleetRegister{st("s2", "r2", "online", t0.Add(time.Minute)), st("s1", "r2", "offline", t0)}, nil, "s2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fleetByRegister(tc.fleet, tc.storeOf)
			if len(got) != 1 || got[0].Store != tc.want {
				t.Fatalf("shown %+v, want the status from %s", got, tc.want)
			}
		})
	}
	got := fleetByRegister([]hq.FleetRegister{st("s1", "r2", "online", t0), st("s1", "r1", "online", t0)}, nil)
	if len(got) != 2 || got[0].Register != "r1" || got[1].Register != "r2" {
		t.Fatalf("two registers: %+v", got)
	}
}
