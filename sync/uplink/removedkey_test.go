package uplink_test

import (
	"context"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// applyToLedger is the daemon's OnConfig in short: the document's rule
// set, catalogue and version go into the ledger with the key that signed
// it (cmd/loyaltyd/internal/daemon configState.Apply).
func applyToLedger(l *ledger.Ledger) func(context.Context, protocol.Config) error {
	return func(ctx context.Context, c protocol.Config) error {
		d := ledger.ConfigDoc{Store: c.Scope == protocol.ScopeStore, Version: c.ConfigVersion, Rules: c.Rules, Key: c.SignedBy}
		for _, p := range c.Catalogue {
			d.Catalogue = append(d.Catalogue, ledger.Item{SKU: p.SKU, Name: p.Name, Price: p.Price, Category: p.Category})
		}
		_, err := l.ApplyConfig(ctx, d)
		return err
	}
}

func ring(t *testing.T, keys ...*signing.Signer) *signing.Keyring {
	t.Helper()
	var pks []signing.PublicKey
	for _, k := range keys {
		pks = append(pks, k.Public())
	}
	r, err := signing.NewKeyring(pks...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func configDoc(t *testing.T, scope string, version uint64, rulesVersion int, price ledger.Money) []byte {
	t.Helper()
	c := protocol.Config{Scope: scope, ConfigVersion: version}
	if scope == protocol.ScopeStore {
		c.Store = "s1"
		c.Catalogue = []protocol.Product{{SKU: "4006381333931", Name: "pen", Price: price}}
	} else {
		rs, err := rules.Decode([]byte(`{"version":1,"earn":{"points_per_unit":"1"}}`))
		if err != nil {
			t.Fatal(err)
		}
		rs.Version = rulesVersion
		c.Rules = rs
	}
	b, err := protocol.EncodeConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRemovedKeyLosesItsConfigFloors: what a register promises after head
// office's signing key leaked and the operator removed it
// (docs/operations.md "Recovering from a leaked signing key"). With the
// leaked key an attacker puts in force a chain config of version 2^53
// (the top of the range) carrying a rule set of version 10^6, and a store
// config of version 2^53 with its catalogue. While the leaked key is
// still pinned, head office's genuine documents (new key, version 9) are
// refused as replays: the version rules hold for a pinned key. Once the
// register pins only the new key, head office's next documents go in
// force whatever their versions (config, rule set, catalogue), become the
// new floors, and the version rules hold again from there: the leaked
// documents are refused (unknown key), an older genuine one as a replay,
// and a restart keeps what is in force.
func TestRemovedKeyLosesItsConfigFloors(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	office := publisher(t, b.URL())
	l := openLedger(t, "r1")
	leaked := hqKey
	newKey, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	chainTop, storeTop := protocol.ChainConfigTopic(), protocol.StoreConfigTopic("s1")
	pub := func(k *signing.Signer, topic string, doc []byte) {
		t.Helper()
		if tok := office.Publish(topic, 1, true, sealWith(k, topic, doc)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	stop := func() {}
	start := func(keys *signing.Keyring) *uplink.Uplink {
		stop() // a restart of the register with its new sync.hq_keys
		v, err := l.HQConfigVersions()
		if err != nil {
			t.Fatal(err)
		}
		var u *uplink.Uplink
		u, stop = startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnConfig: applyToLedger(l), Keys: keys,
			ConfigVersions: uplink.ConfigVersions{Chain: v.Chain, Store: v.Store}})
		testkit.Eventually(t, wait, "online", func() bool { return u.Status().Online })
		return u
	}
	inForce := func(chain, store uint64, rulesVersion int, price ledger.Money) bool {
		v, err := l.HQConfigVersions()
		if err != nil || v.Chain != chain || v.Store != store || l.RuleVersion() != rulesVersion {
			return false
		}
		it, err := l.Item("4006381333931")
		return err == nil && it.Price == price
	}

	// The attack, with the leaked key still pinned.
	u := start(ring(t, leaked))
	pub(leaked, chainTop, configDoc(t, protocol.ScopeChain, 1<<53, 1_000_000, 0))
	pub(leaked, storeTop, configDoc(t, protocol.ScopeStore, 1<<53, 0, 1))
	testkit.Eventually(t, wait, "the leaked documents in force", func() bool { return inForce(1<<53, 1<<53, 1_000_000, 1) })

	// Step 2 of a routine rotation (both keys pinned): head office's
	// documents under the new key keep the version rules, so version 9 is
	// a replay while the leaked key is pinned.
	u = start(ring(t, leaked, newKey))
	before := u.Status().Refused.Replayed
	pub(newKey, chainTop, configDoc(t, protocol.ScopeChain, 9, 3, 0))
	testkit.Eventually(t, wait, "a lower version refused while the leaked key is pinned", func() bool { return u.Status().Refused.Replayed > before })
	if !inForce(1<<53, 1<<53, 1_000_000, 1) {
		t.Fatal("a lower version of a pinned key went in force over a pinned key's document")
	}

	// The recovery: the register pins only the new key.
	u = start(ring(t, newKey))
	pub(newKey, chainTop, configDoc(t, protocol.ScopeChain, 9, 3, 0))
	pub(newKey, storeTop, configDoc(t, protocol.ScopeStore, 9, 0, 250))
	testkit.Eventually(t, wait, "head office's documents in force", func() bool { return inForce(9, 9, 3, 250) })
	if c := u.Status().Config; c.Chain != 9 || c.Store != 9 {
		t.Fatalf("status shows %+v in force, want 9 and 9", c)
	}
	k, err := l.DocKeys()
	if err != nil || k.Chain != newKey.Public().ID() || k.Store != k.Chain || k.Rules != k.Chain || k.Catalogue != k.Chain {
		t.Fatalf("keys recorded %+v (%v), want %s for every floor", k, err, newKey.Public().ID())
	}

	// From here the version rules hold under the new key.
	refused := u.Status().Refused
	pub(leaked, chainTop, configDoc(t, protocol.ScopeChain, 1<<53, 1_000_000, 0))
	pub(newKey, storeTop, configDoc(t, protocol.ScopeStore, 8, 0, 999))
	testkit.Eventually(t, wait, "the leaked document and an older one refused", func() bool {
		r := u.Status().Refused
		return r.UnknownKey > refused.UnknownKey && r.Replayed > refused.Replayed
	})
	pub(newKey, storeTop, configDoc(t, protocol.ScopeStore, 10, 0, 260))
	testkit.Eventually(t, wait, "a newer document in force", func() bool { return inForce(9, 10, 3, 260) })
	u = start(ring(t, newKey))
	testkit.Eventually(t, wait, "the retained documents seen again", func() bool { return u.Status().Config.Store == 10 })
	if !inForce(9, 10, 3, 260) {
		t.Fatal("a restart changed what is in force")
	}
}

// TestRemovedKeyMembersStreamStartsAgain: with the leaked key an attacker
// moves the register's position in its store's member-summary stream to
// 2^56 and gives m1 500 and m2 1,000,000 points chain-wide (while the
// leaked key is pinned, head office's summaries are behind that position
// and change nothing, as any replay). Once the
// register pins only head office's new key, head office's next summary
// restarts the stream: the summaries above its sequence are dropped (m2
// is back to what this register knows of it: nothing), the position
// starts again from 0 and moves with head office's stream, and m1's
// balance is head office's. The register asks head office for the
// stream from 0 at its first connection after the re-pin: head office
// never reaches the position the leaked key claimed.
func TestRemovedKeyMembersStreamStartsAgain(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	office := publisher(t, b.URL())
	l := openLedger(t, "r1")
	leaked := hqKey
	newKey, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	reqs := watchCatchUps(t, office)
	top, own := protocol.MembersTopic("s1"), protocol.RegisterMembersTopic("s1", "r1")
	pubOn := func(topic string, k *signing.Signer, doc []byte) {
		t.Helper()
		if tok := office.Publish(topic, 1, false, sealWith(k, topic, doc)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	pub := func(k *signing.Signer, doc []byte) { t.Helper(); pubOn(top, k, doc) }
	stop := func() {}
	start := func(keys *signing.Keyring) *uplink.Uplink {
		stop() // a restart of the register with its new sync.hq_keys
		var u *uplink.Uplink
		u, stop = startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnMembers: uplink.ApplyMembersTo(l, "r1"), Keys: keys, CatchUpAgain: -1})
		testkit.Eventually(t, wait, "online", func() bool { return u.Status().Online })
		return u
	}
	balance := func(id string) ledger.Points {
		bal, err := l.Balance(id)
		if err != nil {
			return -1
		}
		return bal
	}

	u := start(ring(t, leaked))
	from := uint64(0)
	evil, err := protocol.EncodeMembers(protocol.MemberSummaries{Store: "s1", From: &from, Seq: 1 << 56, Members: []protocol.MemberSummary{
		{MemberID: "m1", Balance: 500, Member: &ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1"}}},
		{MemberID: "m2", Balance: 1_000_000, Member: &ledger.Member{ID: "m2", Aliases: []string{"card-m2"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	pub(leaked, evil)
	testkit.Eventually(t, wait, "the leaked summaries applied", func() bool {
		return u.Status().MembersSeq == 1<<56 && balance("m1") == 500 && balance("m2") == 1_000_000
	})

	asked := len(reqs.list())
	u = start(ring(t, newKey))
	testkit.Eventually(t, wait, "a catch-up from 0 after the re-pin", func() bool { r := reqs.list(); return len(r) > asked && r[len(r)-1] == 0 })
	if p, err := l.MembersPosition(); err != nil || p != 1<<56 {
		t.Fatalf("position %d (%v) before head office's answer", p, err)
	}
	pubOn(own, newKey, part(t, 0, 5, "m1", 10)) // head office's answer
	testkit.Eventually(t, wait, "head office's stream from 0", func() bool {
		p, err := l.MembersPosition()
		return err == nil && p == 5 && u.Status().MembersSeq == 5 && balance("m1") == 10
	})
	if got := balance("m2"); got != 0 {
		t.Fatalf("m2 keeps %d points of the leaked summary", got)
	}
	if _, ok, err := l.MemberSummary("m2"); err != nil || ok {
		t.Fatalf("m2's leaked summary kept (%v, %v)", ok, err)
	}
	pub(leaked, part(t, 5, 1<<56, "m1", 500))
	pub(newKey, part(t, 5, 6, "m1", 11))
	testkit.Eventually(t, wait, "the stream goes on under the new key", func() bool { return u.Status().MembersSeq == 6 && balance("m1") == 11 })
}
