package uplink_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestForgedDocumentsRefused reproduces the hijack of issue 10 on a real
// broker: whoever can publish on head office's topics (a leaked head-office
// credential, a broker administrator) sends a member summary with sequence
// 2^64-1 that moves a card to another member with 2^40 points, and a config
// with version 2^64-1. Every forgery (unsigned, another key, altered after
// signing, signed for another store's topic, genuine key but beyond the
// bounds) is refused, counted by reason and explained; the ledger and the
// versions in force do not change, and genuine documents still apply
// afterwards. A genuine but older document (a replay) is refused too.
func TestForgedDocumentsRefused(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1") // m1 holds card-1
	if _, err := l.Enrol(t.Context(), ledger.Member{ID: "m2", Name: "Mallory", Aliases: []string{"card-2"}}); err != nil {
		t.Fatal(err)
	}
	var applied []uint64
	onConfig := func(_ context.Context, c protocol.Config) error {
		applied = append(applied, c.ConfigVersion)
		return nil
	}
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnMembers: uplink.ApplyMembersTo(l, "r1"), OnConfig: onConfig})
	testkit.Eventually(t, wait, "online", func() bool { return u.Status().Online })
	office := publisher(t, b.URL())
	send := func(topic string, payload []byte) {
		t.Helper()
		if tok := office.Publish(topic, 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	membersTopic := protocol.MembersTopic("s1")
	// The forged summary, as the attack sent it (the encoder would refuse
	// its numbers now, so it is written out).
	hijack := []byte(`{"v":1,"store":"s1","seq":18446744073709551615,"members":[{"member_id":"m2","balance":1099511627776,` +
		`"spend_12m":0,"visits_12m":0,"member":{"id":"m2","name":"Mallory","aliases":["card-1","card-2"]}}]}`)
	small := func(seq uint64, bal ledger.Points) []byte {
		var zero uint64
		p, err := protocol.EncodeMembers(protocol.MemberSummaries{Store: "s1", From: &zero, Seq: seq, Members: []protocol.MemberSummary{{
			MemberID: "m2", Balance: bal, Member: &ledger.Member{ID: "m2", Name: "Mallory", Aliases: []string{"card-1", "card-2"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	genuineS2 := sealWith(hqKey, protocol.MembersTopic("s2"), bytes.Replace(small(7, 1<<39), []byte(`"store":"s1"`), []byte(`"store":"s2"`), 1))
	cases := []struct {
		name, topic string
		msg         []byte
		count       func(uplink.Refused) uint64
		explain     string
	}{
		{"unsigned summary", membersTopic, hijack, func(r uplink.Refused) uint64 { return r.Unsigned }, "not signed"},
		{"summary signed by another key", membersTopic, sealWith(malloryKey, membersTopic, hijack), func(r uplink.Refused) uint64 { return r.UnknownKey }, "unknown key"},
		{"summary altered after signing", membersTopic, bytes.Replace(sealWith(hqKey, membersTopic, small(6, 10)), []byte(`"balance":10`), []byte(`"balance":1099511627776`), 1),
			func(r uplink.Refused) uint64 { return r.BadSignature }, "bad signature"},
		{"another store's summary", membersTopic, genuineS2, func(r uplink.Refused) uint64 { return r.BadSignature }, "bad signature"},
		{"genuine key, sequence 2^64-1 and balance 2^40", membersTopic, sealWith(hqKey, membersTopic, hijack), func(r uplink.Refused) uint64 { return 0 }, "malformed"},
		{"unsigned config 2^64-1", protocol.ChainConfigTopic(), []byte(`{"v":1,"scope":"chain","config_version":18446744073709551615}`),
			func(r uplink.Refused) uint64 { return r.Unsigned }, "not signed"},
		{"config signed by another key", protocol.ChainConfigTopic(), sealWith(malloryKey, protocol.ChainConfigTopic(), []byte(`{"v":1,"scope":"chain","config_version":9}`)),
			func(r uplink.Refused) uint64 { return r.UnknownKey }, "unknown key"},
	}
	for _, tc := range cases {
		before := u.Status()
		send(tc.topic, tc.msg)
		testkit.Eventually(t, wait, tc.name+" refused", func() bool { return u.Status().Rejected > before.Rejected })
		s := u.Status()
		if got, was := tc.count(s.Refused), tc.count(before.Refused); tc.explain != "malformed" && got != was+1 {
			t.Errorf("%s: counted %d -> %d", tc.name, was, got)
		}
		why := s.MembersError
		if strings.HasSuffix(tc.topic, "config") {
			why = s.ConfigError
		}
		if !strings.Contains(why, tc.explain) {
			t.Errorf("%s: status says %q, want it to mention %q", tc.name, why, tc.explain)
		}
		if s.MembersSeq != 0 || s.Config != (uplink.ConfigVersions{}) || len(applied) != 0 {
			t.Fatalf("%s changed what is in force: members seq %d, config %+v, applied %v", tc.name, s.MembersSeq, s.Config, applied)
		}
		if m, err := l.LookupAlias("card-1"); err != nil || m.ID != "m1" {
			t.Fatalf("%s: card-1 now belongs to %q (%v)", tc.name, m.ID, err)
		}
		if bal, _ := l.Balance("m2"); bal != 0 {
			t.Fatalf("%s: m2's balance is %d", tc.name, bal)
		}
	}

	// Genuine documents still apply.
	send(membersTopic, sealWith(hqKey, membersTopic, small(5, 40)))
	testkit.Eventually(t, wait, "genuine summary", func() bool { return u.Status().MembersSeq == 5 })
	if bal, _ := l.Balance("m2"); bal != 40 {
		t.Fatalf("genuine summary: balance %d", bal)
	}
	send(protocol.ChainConfigTopic(), sealWith(hqKey, protocol.ChainConfigTopic(), []byte(`{"v":1,"scope":"chain","config_version":3}`)))
	testkit.Eventually(t, wait, "genuine config", func() bool { return u.Status().Config.Chain == 3 })
	if s := u.Status(); s.ConfigError != "" || s.MembersError != "" {
		t.Fatalf("errors after genuine documents: %q %q", s.ConfigError, s.MembersError)
	}

	// Replays of genuine, older documents change nothing: a config is
	// refused, a members message older than the position brings nothing
	// new (catch-ups overlap live messages by design).
	send(membersTopic, sealWith(hqKey, membersTopic, small(4, 999)))
	for _, r := range []struct {
		topic string
		doc   []byte
	}{
		{protocol.ChainConfigTopic(), []byte(`{"v":1,"scope":"chain","config_version":2}`)},
	} {
		before := u.Status().Refused.Replayed
		send(r.topic, sealWith(hqKey, r.topic, r.doc))
		testkit.Eventually(t, wait, "replay refused", func() bool { return u.Status().Refused.Replayed > before })
	}
	if bal, _ := l.Balance("m2"); bal != 40 {
		t.Fatalf("replayed summary: balance %d", bal)
	}
	// The config in force is newer than the replay, so nothing is wrong
	// to show: the replay is counted, not reported as a config error.
	if s := u.Status(); s.MembersSeq != 5 || s.Config.Chain != 3 || s.ConfigError != "" {
		t.Fatalf("after replays: %+v", s)
	}
	if bal, _ := l.Balance("m2"); bal != 40 {
		t.Fatalf("replayed summary: balance %d", bal)
	}
}

// TestNoKeysPinnedRefusesAll: a register without pinned keys refuses every
// document and says why.
func TestNoKeysPinnedRefusesAll(t *testing.T) {
	u, err := uplink.New(memOutbox{}, &uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Store: "s1", Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	topic := protocol.ChainConfigTopic()
	u.Deliver(t.Context(), topic, sealed(topic, []byte(`{"v":1,"scope":"chain","config_version":3}`)))
	if s := u.Status(); s.Config.Chain != 0 || !strings.Contains(s.ConfigError, "no head-office key pinned") {
		t.Fatalf("status %+v", s)
	}
}
