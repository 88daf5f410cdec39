package yamlkeys_test

import (
	"fmt"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/cmd/internal/yamlkeys"
)

func ExampleFind() {
	type Ledger struct {
		Path        string `yaml:"path"`
		LockTimeout string `yaml:"lock_timeout"`
	}
	type Config struct {
		Ledger Ledger `yaml:"ledger"`
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("ledger:\n  path: x.db\n  lock_timout: 2s\n"), &doc); err != nil {
		panic(err)
	}
	for _, u := range yamlkeys.Find(&doc, reflect.TypeFor[Config]()) {
		fmt.Printf("line %d: %s: unknown key %q; allowed keys: %v\n", u.Line, u.Path, u.Key, u.Allowed)
	}
	// Output:
	// line 3: ledger.lock_timout: unknown key "lock_timout"; allowed keys: [path lock_timeout]
}
