package hq_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// TestRemovedKeyForgottenByHeadOffice: what head office promises after
// its signing key leaked (docs/operations.md "Recovering from a leaked
// signing key"). A chain config of version 2^53 with rule set 1000,
// signed with the leaked key while head office still used it, is recorded
// and its rule set learnt by the policy. While the leaked key is still
// pinned (a rotation's step with both keys) both stay. Once serve
// restarts with only the new key, the record and the rule set are
// forgotten: the policy no longer knows rule set 1000, and publish-config
// under the new key may publish version 9 again, which is recorded and
// learnt and survives the next restart.
func TestRemovedKeyForgottenByHeadOffice(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	conn := hq.Conn{Broker: b.URL(), WaitTimeout: wait}
	leaked := hqKey
	newKey, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	both, err := signing.NewKeyring(leaked.Public(), newKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	doc := func(configVersion string, rulesVersion string) protocol.Config {
		t.Helper()
		cfg, err := hq.ParseConfig([]byte("version: "+configVersion+"\nrules:"+indent(strings.Replace(goodRules, "version: 3", "version: "+rulesVersion, 1))+"\n"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	recorded := func(st *hqstore.Store) uint64 {
		t.Helper()
		docs, err := st.Configs()
		if err != nil {
			t.Fatal(err)
		}
		return hq.RecordOf(docs)[protocol.ChainConfigTopic()].Version
	}
	path := filepath.Join(t.TempDir(), "hq.db")

	p := policy.New(policy.Limits{}, nil)
	_, st, stop := startHQ(t, b.URL(), path, hq.Options{Policy: p})
	if err := hq.PublishConfig(context.Background(), conn, leaked, doc("9007199254740992", "1000")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "the leaked rule set learnt and recorded", func() bool {
		return slices.Contains(p.Versions(), 1000) && recorded(st) == 1<<53
	})
	stop()

	p = policy.New(policy.Limits{}, nil)
	_, st, stop = startHQ(t, b.URL(), path, hq.Options{Policy: p, Signer: newKey, Keys: both})
	if !slices.Contains(p.Versions(), 1000) || recorded(st) != 1<<53 {
		t.Fatalf("with the leaked key still pinned: rule sets %v, record %d", p.Versions(), recorded(st))
	}
	stop()

	p = policy.New(policy.Limits{}, nil)
	_, st, stop = startHQ(t, b.URL(), path, hq.Options{Policy: p, Signer: newKey})
	if slices.Contains(p.Versions(), 1000) || recorded(st) != 0 {
		t.Fatalf("after the re-pin: rule sets %v, record %d", p.Versions(), recorded(st))
	}
	docs, err := st.Configs()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hq.Publish(context.Background(), conn, newKey, doc("9", "4"), &hq.PublishOptions{Record: hq.RecordOf(docs), Recorder: st}); err != nil {
		t.Fatalf("publish-config under the new key: %v", err)
	}
	testkit.Eventually(t, wait, "head office's rule set learnt", func() bool { return slices.Contains(p.Versions(), 4) && recorded(st) == 9 })
	stop()

	p = policy.New(policy.Limits{}, nil)
	_, st, _ = startHQ(t, b.URL(), path, hq.Options{Policy: p, Signer: newKey})
	if v := p.Versions(); !slices.Contains(v, 4) || slices.Contains(v, 1000) || recorded(st) != 9 {
		t.Fatalf("after another restart: rule sets %v, record %d", v, recorded(st))
	}
}
