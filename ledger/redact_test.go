package ledger

import (
	"strings"
	"testing"
)

func TestRedactRecord(t *testing.T) {
	r := OutboxRecord{Seq: 3, ID: "r1-3", Type: OutMember, Data: []byte(`{"id":"m1", "name":"Alice"}`)}
	a := RedactRecord(r, "m1")
	r.Data = []byte(`{"id":"m1","name":"Alice"}`) // the same record, compacted
	b := RedactRecord(r, "m1")
	if string(a.Data) != string(b.Data) || strings.Contains(string(a.Data), "Alice") {
		t.Fatalf("redacted %s and %s", a.Data, b.Data)
	}
	if m, ok := RedactedMember(a.Data); !ok || m != "m1" || ProfileMember(a.Data) != "m1" {
		t.Fatalf("RedactedMember(%s) = %q %v", a.Data, m, ok)
	}
	if c := RedactRecord(a, "m1"); string(c.Data) != string(a.Data) {
		t.Fatalf("redacting twice changed %s to %s", a.Data, c.Data)
	}
	r.Data = []byte(`{"id":"m1","name":"Alicia"}`)
	if d := RedactRecord(r, "m1"); string(d.Data) == string(a.Data) {
		t.Fatal("other content, same digest")
	}
	for _, bad := range []string{`{"id":"m1"}`, `{"erased":"m1"}`, `{"erased":"m1","sha256":"00","x":1}`, `{"erased":"","sha256":"` + strings.Repeat("0", 64) + `"}`} {
		if _, ok := RedactedMember([]byte(bad)); ok {
			t.Errorf("%s taken as redacted", bad)
		}
	}
}
