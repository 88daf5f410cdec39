package uplink_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestEraseDocument: an erase document that head office did not sign
// (unsigned, another key, altered, signed for another store) is refused,
// counted and explained and erases nothing; head office's own erases the
// member once and queues the confirmation.
func TestEraseDocument(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1") // m1 "Dana" holds card-1
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnErase: l.EraseMember})
	testkit.Eventually(t, wait, "online", func() bool { return u.Status().Online })
	office := publisher(t, b.URL())
	topic := protocol.EraseTopic("s1")
	doc := func(store string) []byte {
		p, err := protocol.EncodeErase(protocol.EraseDoc{Store: store, Erasures: []protocol.Erasure{{N: 4, Member: "m1"}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An erase document for m9, altered after signing to name m1.
	other, err := protocol.EncodeErase(protocol.EraseDoc{Store: "s1", Erasures: []protocol.Erasure{{N: 4, Member: "m9"}}})
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(sealWith(hqKey, topic, other), []byte(`"member":"m9"`), []byte(`"member":"m1"`), 1)
	cases := []struct {
		name  string
		msg   []byte
		count func(uplink.Refused) uint64
	}{
		{"unsigned", doc("s1"), func(r uplink.Refused) uint64 { return r.Unsigned }},
		{"another key", sealWith(malloryKey, topic, doc("s1")), func(r uplink.Refused) uint64 { return r.UnknownKey }},
		{"altered after signing", altered, func(r uplink.Refused) uint64 { return r.BadSignature }},
		{"signed for another store", sealWith(hqKey, protocol.EraseTopic("s2"), doc("s1")), func(r uplink.Refused) uint64 { return r.BadSignature }},
	}
	for _, c := range cases {
		before := c.count(u.Status().Refused)
		if tok := office.Publish(topic, 1, false, c.msg); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		testkit.Eventually(t, wait, c.name+" refused", func() bool { return c.count(u.Status().Refused) == before+1 })
		if e := u.Status().EraseError; !strings.Contains(e, "refused erase document") {
			t.Errorf("%s: erase error %q", c.name, e)
		}
		if m, err := l.Member("m1"); err != nil || m.Name != "Dana" {
			t.Fatalf("%s changed the member: %+v %v", c.name, m, err)
		}
		if _, ok, _ := l.Erased("m1"); ok {
			t.Fatalf("%s: erasure recorded", c.name)
		}
	}
	// Head office's document, retained (as head office publishes it) and
	// delivered twice: one erasure, one confirmation.
	for range 2 {
		if tok := office.Publish(topic, 1, true, sealWith(hqKey, topic, doc("s1"))); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	testkit.Eventually(t, wait, "erased", func() bool { _, ok, _ := l.Erased("m1"); return ok })
	testkit.Eventually(t, wait, "error cleared", func() bool { return u.Status().EraseError == "" })
	if m, _ := l.Member("m1"); m.Name != "" || len(m.Aliases) != 0 {
		t.Fatalf("after the genuine document: %+v", m)
	}
	if st := u.Status(); st.Erased != 1 {
		t.Fatalf("erased %d, want 1", st.Erased)
	}
	recs, err := l.Outbox(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Type == ledger.OutErased {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d confirmations queued, want 1", n)
	}
	// Clear the retained document for the other tests on this broker.
	office.Publish(topic, 1, true, nil).WaitTimeout(wait)
}
