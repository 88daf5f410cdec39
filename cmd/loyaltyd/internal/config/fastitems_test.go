package config

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// yamlItemLine is what the YAML decoder makes of "- LINE" as a list of
// Item (ok false when it refuses it).
func yamlItemLine(line string) (Item, bool) {
	var items []Item
	dec := yaml.NewDecoder(strings.NewReader("- " + line + "\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&items); err != nil || len(items) != 1 {
		return Item{}, false
	}
	return items[0], true
}

// FuzzFastItemLine: whatever line the fast reader accepts, the YAML
// decoder reads as the same item.
func FuzzFastItemLine(f *testing.F) {
	for _, s := range []string{
		`{sku: "4006381333931", name: "Stabilo pen", price: 250, category: stationery}`,
		`{sku: '9780201379624', name: Design Patterns, price: 4999}`,
		`{sku: A-1, name: "a, b # c", price: 0}`,
		`{sku: "x", name: yes, price: 1}`,
		`{sku: "x", name: 'it''s', price: 1}`,
		`{sku: "x", name: "tab\there", price: 1}`,
		`{sku: "x", price: 007}`,
		`{sku: x, sku: y}`,
		`{sku: x,}`,
		`{sku: 12, name: n}`,
		`{sku: x, name: 1.5e3}`,
		`{name: Caffè latte, sku: c1, price: 350, category: drinks}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n\r") {
			return
		}
		got, ok := fastItemLine(line)
		if !ok {
			return
		}
		want, yok := yamlItemLine(line)
		if !yok {
			t.Fatalf("fast reader took %q, YAML refuses it", line)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, YAML %+v", line, got, want)
		}
	})
}

// TestFastItemsSameConfig: a catalogue in one-line items parses to the
// same config as the block form, errors name the item's line, and forms
// the fast reader does not take still parse through YAML.
func TestFastItemsSameConfig(t *testing.T) {
	head := "register:\n  id: r1\n  store_id: s1\nledger:\n  path: /tmp/l.db\ncatalogue:\n  version: 2\n  items:\n"
	flow := head + "    - {sku: \"4006381333931\", name: Stabilo pen, price: 250, category: stationery}\n" +
		"    # a comment between items\n" +
		"    - {sku: \"9780201379624\", name: \"Design Patterns\", price: 4999}\n" +
		"api:\n  listen: 127.0.0.1:8080\n"
	block := head + "    - sku: \"4006381333931\"\n      name: Stabilo pen\n      price: 250\n      category: stationery\n" +
		"    - sku: \"9780201379624\"\n      name: Design Patterns\n      price: 4999\n" +
		"api:\n  listen: 127.0.0.1:8080\n"
	if _, _, ok := fastItems([]byte(flow)); !ok {
		t.Fatal("the one-line form was not read fast")
	}
	if _, _, ok := fastItems([]byte(block)); ok {
		t.Fatal("the block form was read fast")
	}
	a, err := Parse("flow.yaml", []byte(flow))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("block.yaml", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("flow %+v\nblock %+v", a.Catalogue, b.Catalogue)
	}
	// Errors in fast items keep their line.
	bad := head + "    - {sku: \"4006381333931\", name: Pen, price: 250}\n" +
		"    - {sku: \"4006381333931\", name: Pen again, price: 250}\n" +
		"    - {sku: \"4006381333932\", name: Bad digit, price: 250}\n"
	_, err = Parse("bad.yaml", []byte(bad))
	for _, want := range []string{"bad.yaml:10: catalogue.items[1].sku: duplicate SKU", "bad.yaml:11: catalogue.items[2].sku"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	// An unknown key or a quoted price leaves the list to YAML, which
	// names the problem.
	for _, tc := range []struct{ line, want string }{
		{`{sku: "4006381333931", name: Pen, price: 250, colour: red}`, `unknown key "colour"`},
		{`{sku: "4006381333931", name: Pen, price: "250"}`, `catalogue.items[0].price`},
	} {
		_, err := Parse("x.yaml", []byte(head+"    - "+tc.line+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.line, err, tc.want)
		}
	}
}
