package uplink_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestAckInAnUnknownVersionIsNeverApplied: an ack with "v":2 might mean
// something else by its watermark, so the register applies none of it
// (nothing is forgotten), counts it as refused for its version and keeps
// its events; a later v1 ack, even with fields this register does not
// know, is applied as usual.
func TestAckInAnUnknownVersionIsNeverApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(50)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, ConfirmEvery: time.Millisecond, AckTimeout: time.Hour})
		deliver := func(payload string) {
			fb.mu.Lock()
			h := fb.onMessage
			fb.mu.Unlock()
			topic := protocol.AckTopic("s1", "r1")
			h(topic, sealWith(hqKey, topic, []byte(payload)), false) // signed by head office: refused for its version alone
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		deliver(`{"v":2,"register":"r1","watermark":40}`)
		if c := ob.confirmCalls(); len(c) != 0 {
			t.Fatalf("confirmed %v on a v2 ack", c)
		}
		if st := u.Status(); st.Refused.Version != 1 || st.Pending != 50 {
			t.Fatalf("after a v2 ack: refused %+v, pending %d; want version 1 and 50 pending", st.Refused, st.Pending)
		}
		deliver(`{"v":1,"register":"r1","watermark":30,"sent_at":"2027-01-01T00:00:00Z"}`)
		if c := ob.confirmCalls(); !slices.Equal(c, []uint64{30}) {
			t.Fatalf("confirms %v after a v1 ack with an unknown field, want [30]", c)
		}
	})
}
