package retentiontest_test

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention/retentiontest"
)

func TestGenerateShape(t *testing.T) {
	d := retentiontest.Generate(1)
	count := map[retentiontest.Rhythm]int{}
	for _, p := range d.People {
		count[p.Rhythm]++
	}
	t.Log(count)
}
