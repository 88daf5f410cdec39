package hq_test

import (
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
)

// Validate a config document before publishing it with hq.PublishConfig.
func ExampleParseConfig() {
	doc := []byte(`
scope: store
store: sofia1
version: 12
catalogue:
  - {sku: "4006381333931", name: Stabilo pen, category: stationery, price: 250}
`)
	cfg, err := hq.ParseConfig(doc, time.Time{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hq.ConfigTopic(cfg), cfg.ConfigVersion, len(cfg.Catalogue))

	_, err = hq.ParseConfig([]byte("version: 13\ncatalogue:\n  - {sku: a, price: -1}\n"), time.Time{})
	fmt.Println(err != nil)
	// Output:
	// loyalty/v1/sofia1/config 12 1
	// true
}
