package uplink_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestConnectedButNeverAcknowledged: the link is up, events went out and
// nothing comes back (the broker's ACL drops a register's publishes
// without a word): after NoAckFault the status says so and why that may
// be; an ack clears it.
func TestConnectedButNeverAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(6)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: 10 * time.Second, NoAckFault: 5 * time.Minute})
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		if f := u.Status().Fault; f != "" {
			t.Fatalf("fault %q before NoAckFault", f)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		st := u.Status()
		if !strings.Contains(st.Fault, "connected, 6 sent, no acknowledgement for 5m0s") || !strings.Contains(st.Fault, "certificate identity") ||
			!strings.Contains(st.String(), st.Fault) || u.Fault() != st.Fault {
			t.Fatalf("status %q, fault %q", st.String(), st.Fault)
		}
		fb.ack(6, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		if f := u.Status().Fault; f != "" {
			t.Fatalf("fault %q after head office acknowledged everything", f)
		}
	})
}
