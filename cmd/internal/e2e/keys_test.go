package e2e_test

import (
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// hqKey is head office's signing key in the end-to-end tests; the
// registers' configs pin its public key (syncCfg).
var hqKey = func() *signing.Signer {
	k, err := signing.Generate(nil)
	if err != nil {
		panic(err)
	}
	return k
}()

// syncCfg is the sync section of a register's config for broker, pinning
// hqKey.
func syncCfg(broker string) string {
	return "sync:\n  enabled: true\n  broker: " + broker + "\n  hq_keys: [\"" + hqKey.Public().String() + "\"]\n"
}
