package api_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

func TestNewStatusSync(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	oldest := now.Add(-90 * time.Second)
	stats := ledger.Stats{OutboxPending: 4, Sales: 2}
	for _, tc := range []struct {
		name string
		in   api.StatusInput
		want api.SyncStatus
	}{
		{"standalone register: disabled, not online", api.StatusInput{Ledger: stats},
			api.SyncStatus{Online: false, Pending: 4, Summary: "disabled, 4 pending"}},
		{"standalone register with pending events: oldest and lag", api.StatusInput{Now: now, Ledger: stats, OutboxOldest: oldest},
			api.SyncStatus{Online: false, Pending: 4, Oldest: oldest, LagS: 90, Summary: "disabled, 4 pending, oldest 2026-11-27T09:58:30Z"}},
		{"sync could not start", api.StatusInput{Ledger: stats, SyncErr: errors.New("sync password: no such file")},
			api.SyncStatus{Enabled: true, Pending: 4, LastError: "sync not started: sync password: no such file", Summary: "offline, 4 pending"}},
		{"ledger not answering, no uplink", api.StatusInput{LedgerErr: errors.New("closed")},
			api.SyncStatus{Summary: "disabled, 0 pending"}},
		{"uplink online, nothing pending", api.StatusInput{Now: now, Sync: &uplink.Status{Online: true, Config: uplink.ConfigVersions{Chain: 3}}},
			api.SyncStatus{Enabled: true, Online: true, Config: &uplink.ConfigVersions{Chain: 3}, Refused: &uplink.Refused{}, Summary: "online, 0 pending"}},
		{"forged documents refused", api.StatusInput{Now: now, Sync: &uplink.Status{Online: true, MembersError: "not signed", Refused: uplink.Refused{Unsigned: 2, Replayed: 1}}},
			api.SyncStatus{Enabled: true, Online: true, Config: &uplink.ConfigVersions{}, MembersError: "not signed", Refused: &uplink.Refused{Unsigned: 2, Replayed: 1}, Summary: "online, 0 pending"}},
		{"forged ack refused", api.StatusInput{Now: now, Sync: &uplink.Status{Online: true, Pending: 3, AckError: "refused ack: not signed", Refused: uplink.Refused{Unsigned: 1}}},
			api.SyncStatus{Enabled: true, Online: true, Pending: 3, Config: &uplink.ConfigVersions{}, AckError: "refused ack: not signed", Refused: &uplink.Refused{Unsigned: 1}, Summary: "online, 3 pending"}},
		{"uplink offline with a backlog", api.StatusInput{Now: now, Sync: &uplink.Status{Pending: 7, Oldest: oldest, LastError: "connection refused", ConfigError: "stale version"}},
			api.SyncStatus{Enabled: true, Pending: 7, Oldest: oldest, LagS: 90, LastError: "connection refused", Config: &uplink.ConfigVersions{}, ConfigError: "stale version", Refused: &uplink.Refused{},
				Summary: "offline, 7 pending, oldest 2026-11-27T09:58:30Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := api.NewStatus(tc.in).Sync
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sync\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNewStatusDocument(t *testing.T) {
	in := api.StatusInput{Version: "1.2.3", Register: "r1", Store: "s1", Uptime: 61500 * time.Millisecond, ClockTrusted: true,
		Ledger:    ledger.Stats{Members: 3, Sales: 5, OutboxPending: 1, LastSeq: 9},
		Devices:   []device.Health{{Name: "scanner0", Path: "/dev/ttyACM0", State: device.StateHealthy, Frames: 12, Rejects: map[string]int64{"noise": 2}}},
		Simulated: map[string]string{"scanner0": "/run/dev/scanner0"}, Checkout: "basket"}
	st := api.NewStatus(in)
	if st.UptimeS != 61 || !st.ClockTrusted || st.Checkout != "basket" || st.Ledger == nil || st.Ledger.Sales != 5 || st.LedgerError != "" {
		t.Errorf("status %+v", st)
	}
	if len(st.Devices) != 1 || st.Devices[0].Name != "scanner0" || st.Devices[0].State != "healthy" || st.Devices[0].Rejects["noise"] != 2 {
		t.Errorf("devices %+v", st.Devices)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"version":"1.2.3"`, `"uptime_s":61`, `"simulated_devices":{"scanner0":"/run/dev/scanner0"}`, `"summary":"disabled, 1 pending"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("status JSON lacks %s: %s", want, b)
		}
	}

	if st.ClockNote != "" {
		t.Errorf("a trusted clock has a note: %q", st.ClockNote)
	}
	if n := api.NewStatus(api.StatusInput{}).ClockNote; n != api.NoteClockUnsynced {
		t.Errorf("untrusted clock note %q", n)
	}
	if n := api.NewStatus(api.StatusInput{ClockTrusted: true, Clock: &ledger.ClockStatus{Synced: true, Fault: "ahead"}}).ClockNote; n != api.NoteClockFault {
		t.Errorf("clock fault note %q", n)
	}

	// No devices is an empty list, not null; a ledger that does not answer
	// is said, not hidden.
	st = api.NewStatus(api.StatusInput{LedgerErr: errors.New("ledger closed")})
	if st.Devices == nil || st.Ledger != nil || st.LedgerError != "ledger closed" || st.SimDevices != nil {
		t.Errorf("status %+v", st)
	}
	b, _ = json.Marshal(st)
	if !strings.Contains(string(b), `"devices":[]`) || strings.Contains(string(b), `"ledger":`) {
		t.Errorf("status JSON %s", b)
	}
}
