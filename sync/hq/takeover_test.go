package hq

import (
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestFleetSeesTakeover: two ledgers publishing under one register id
// alternate on its status topic; head office names it when one comes back
// after the other. A replaced register (the old ledger never comes back)
// is not taken for one, nor is the same ledger restarting; a register's own
// takeover count is reported too; it ends after TakeoverWindow.
func TestFleetSeesTakeover(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	status := func(inc string, takeovers uint64) []byte {
		b, err := protocol.EncodeStatus(protocol.Status{Store: "s1", Register: "r1", State: protocol.StateOnline, Incarnation: inc, Takeovers: takeovers})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type step struct {
		inc       string
		takeovers uint64
		after     time.Duration
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  string // substring of the takeover text, "" for none
	}{
		{"one register", []step{{"a", 0, 0}, {"a", 0, time.Minute}, {"a", 0, time.Minute}}, ""},
		{"replaced", []step{{"a", 0, 0}, {"b", 0, 2 * time.Minute}, {"b", 0, time.Minute}}, ""},
		{"copied config", []step{{"a", 0, 0}, {"b", 0, time.Second}, {"a", 0, time.Second}}, "ledgers a and b"},
		{"old ledger back after the window", []step{{"a", 0, 0}, {"b", 0, 11 * time.Minute}, {"a", 0, time.Second}}, ""},
		{"the register says so", []step{{"a", 3, 0}}, "reports its broker session taken over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &Service{fleet: newFleet()}
			now := t0
			for _, s := range tc.steps {
				now = now.Add(s.after)
				svc.fleet.status(protocol.StatusTopic("s1", "r1"), status(s.inc, s.takeovers), now)
			}
			tk := svc.Takeovers()
			switch {
			case tc.want == "" && len(tk) != 0:
				t.Fatalf("takeover reported: %+v", tk)
			case tc.want != "" && (len(tk) != 1 || !strings.Contains(tk[0].Takeover, tc.want) || !tk[0].TakeoverAt.Equal(now)):
				t.Fatalf("takeovers %+v, want one saying %q at %v", tk, tc.want, now)
			}
		})
	}
}
