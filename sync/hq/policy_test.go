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
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestPolicyLearnsPublishedRules: a rule set head office publishes is
// known to its policy (so sales under it are checked, not held as
// "rules"), recorded by version, and known again after a restart, even
// once a newer one replaced it on the broker.
func TestPolicyLearnsPublishedRules(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	conn := hq.Conn{Broker: b.URL(), WaitTimeout: wait}
	publish := func(configVersion, rulesVersion string) {
		t.Helper()
		doc := "version: " + configVersion + "\nrules:" + indent(strings.Replace(goodRules, "version: 3", "version: "+rulesVersion, 1)) + "\n"
		cfg, err := hq.ParseConfig([]byte(doc), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if err := hq.PublishConfig(context.Background(), conn, hqKey, cfg); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "hq.db")
	p := policy.New(policy.Limits{}, nil)
	_, _, stop := startHQ(t, b.URL(), path, hq.Options{Policy: p})
	publish("1", "3")
	testkit.Eventually(t, wait, "rule set 3 known to the policy", func() bool { return slices.Contains(p.Versions(), 3) })
	publish("2", "4")
	testkit.Eventually(t, wait, "rule set 4 known to the policy", func() bool { return slices.Contains(p.Versions(), 4) })
	stop()

	p2 := policy.New(policy.Limits{}, nil)
	startHQ(t, b.URL(), path, hq.Options{Policy: p2})
	if v := p2.Versions(); !slices.Contains(v, 3) || !slices.Contains(v, 4) {
		t.Fatalf("after a restart the policy knows rule sets %v, want 3 and 4", v)
	}
}
