package uplink_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// ackOn publishes payload live (QoS 1, not retained) on r1's ack topic.
func ackOn(t *testing.T, c mqtt.Client, payload []byte) {
	t.Helper()
	if tok := c.Publish(protocol.AckTopic("s1", "r1"), 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

// TestForgedAckForgetsNothing: a register forgets events only on an ack
// head office signed (docs/security.md). Whoever can publish on its ack
// topic without head office's key (the broker's administrator, a holder
// of head office's broker credential, a head office older than this
// register) makes it forget nothing: an unsigned ack, one signed by a key
// the register does not pin and one altered after signing are each
// refused, counted by reason and said in AckError, and the register keeps
// every event (here no head office runs: nothing was applied anywhere).
// An ack signed by either key pinned during a rotation is head office's.
func TestForgedAckForgetsNothing(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", KeepConfirmedFor: -1})
	if _, err := l.Enrol(t.Context(), ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1"}}); err != nil {
		t.Fatal(err)
	}
	record(t, l, "sale", 20)
	next, err := signing.Generate(nil) // the key head office rotates to
	if err != nil {
		t.Fatal(err)
	}
	ring, err := signing.NewKeyring(hqKey.Public(), next.Public())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, Keys: ring, ConfirmEvery: time.Millisecond})
	st, _ := l.Stats()
	last := st.LastSeq
	testkit.Eventually(t, wait, "everything published", func() bool { return u.Status().Published == last })
	office := publisher(t, b.URL())
	topic := protocol.AckTopic("s1", "r1")
	all := protocol.Ack{Register: "r1", Watermark: last}

	plain, err := protocol.EncodeAck(all)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(signedAck(t, topic, protocol.Ack{Register: "r1", Watermark: 1}),
		[]byte(`"watermark":1}`), []byte(`"watermark":`+strconv.FormatUint(last, 10)+`}`), 1)
	for _, step := range []struct {
		name string
		msg  []byte
		n    func(uplink.Refused) uint64
	}{
		{"unsigned", plain, func(r uplink.Refused) uint64 { return r.Unsigned }},
		{"signed by a key not pinned", sealWith(stranger, topic, plain), func(r uplink.Refused) uint64 { return r.UnknownKey }},
		{"altered after signing", altered, func(r uplink.Refused) uint64 { return r.BadSignature }},
	} {
		ackOn(t, office, step.msg)
		testkit.Eventually(t, wait, step.name+" ack refused", func() bool { return step.n(u.Status().Refused) == 1 })
		if c, _ := l.Confirmed(); c != 0 {
			t.Fatalf("%s ack from the broker confirmed %d events head office never received", step.name, c)
		}
		if s := u.Status(); !strings.Contains(s.AckError, "refused ack") {
			t.Fatalf("%s ack: status does not say it was refused: %q", step.name, s.AckError)
		}
	}
	if pending, _, _ := l.OutboxStats(); uint64(pending) != last {
		t.Fatalf("pending %d after forged acks, want all %d kept", pending, last)
	}

	// Head office's own ack, signed by the next key of a rotation.
	ackOn(t, office, sealWith(next, topic, plain))
	testkit.Eventually(t, wait, "head office's ack confirmed", func() bool { return u.Status().Watermark == last })
	if c, _ := l.Confirmed(); c != last {
		t.Fatalf("confirmed %d after head office's ack of %d", c, last)
	}
	if s := u.Status(); s.AckError != "" || s.Refused.Unsigned != 1 || s.Refused.UnknownKey != 1 || s.Refused.BadSignature != 1 {
		t.Fatalf("after head office's ack: refused %+v, ack error %q", s.Refused, s.AckError)
	}
}

// TestAckBeyondPublishedConfirmsNothing: a register never confirms beyond
// the highest sequence number this process has handed to the broker.
// Head office's own signed ack, replayed (or head office confused),
// cannot make it forget events it never sent: with 10 of 20 events
// published (MaxUnacked), a signed ack of all 20 confirms the 10 sent
// and none of the 10 unsent (it confirmed nothing at all before
// review11, which left a restarted register far behind head office
// unable to confirm ever again: TestRestartBehindHeadOfficeConfirms).
func TestAckBeyondPublishedConfirmsNothing(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", KeepConfirmedFor: -1})
	if _, err := l.Enrol(t.Context(), ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1"}}); err != nil {
		t.Fatal(err)
	}
	record(t, l, "sale", 20)
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, BatchEvents: 10, MaxUnacked: 10, ConfirmEvery: time.Millisecond})
	testkit.Eventually(t, wait, "the first 10 published", func() bool { return u.Status().Published == 10 })
	st, _ := l.Stats()
	office := publisher(t, b.URL())
	topic := protocol.AckTopic("s1", "r1")
	ackOn(t, office, signedAck(t, topic, protocol.Ack{Register: "r1", Watermark: st.LastSeq}))
	testkit.Eventually(t, wait, "the 10 sent confirmed", func() bool { c, _ := l.Confirmed(); return c >= 10 })
	if c, _ := l.Confirmed(); c != 10 {
		t.Fatalf("confirmed %d with 10 published: an ack beyond what was sent forgot events never sent", c)
	}
}

// TestForgedAckRenumbersNothing: a new ledger continues another
// incarnation's stream only on head office's signed word: an ack to
// another incarnation signed by a key not pinned is refused and the
// ledger keeps its numbers; head office's own then continues the stream.
func TestForgedAckRenumbersNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := &rebasingOutbox{fakeOutbox: newFakeOutbox(0)}
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: time.Hour})
		stranger, err := signing.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		topic := protocol.AckTopic("s1", "r1")
		doc, err := protocol.EncodeAck(protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: 1000})
		if err != nil {
			t.Fatal(err)
		}
		fb.deliver(topic, sealWith(stranger, topic, doc), true)
		synctest.Wait()
		if st := u.Status(); st.Replaced != "" || len(ob.rebases) != 0 || st.Refused.UnknownKey != 1 {
			t.Fatalf("a forged ack renumbered the ledger: status %+v, rebases %v", st, ob.rebases)
		}
		fb.deliver(topic, signedAck(t, topic, protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: 41}), true)
		synctest.Wait()
		if st := u.Status(); st.Replaced != "aaaa" || st.ReplacedAt != 41 {
			t.Fatalf("head office's ack did not continue the stream: status %+v, rebases %v", st, ob.rebases)
		}
	})
}
