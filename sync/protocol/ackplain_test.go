package protocol

import (
	"reflect"
	"testing"
)

// TestDecodeAckPlain: the acks EncodeAck writes take the plain path and
// decode as encoding/json decodes them; other forms are left to
// encoding/json.
func TestDecodeAckPlain(t *testing.T) {
	for _, a := range []Ack{
		{Register: "r1", Watermark: 0},
		{Register: "store1-r1", Watermark: 18446744073709551615},
		{Register: "r1", Incarnation: "3f2a9c1d", Watermark: 12},
		{Register: "r1", Watermark: 3, Gap: 4},
		{Register: "r1", Incarnation: "x", Watermark: 3, Gap: 4, GapTo: 9},
	} {
		b, err := EncodeAck(a)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decodeAckPlain(b)
		if !ok {
			t.Fatalf("%s: not taken by the plain path", b)
		}
		sameAsJSON(t, b, got)
	}
	for _, s := range []string{
		`{"v":1,"register":"r1","watermark":3,"notice":{"code":"store","held":1,"text":"t"}}`,
		`{"v":1,"register":"r\u0031","watermark":3}`,
		`{"v":1,"register":"r1","watermark":03}`,
		`{"v":1,"register":"r1","watermark":3.0}`,
		`{"v":1,"register":"r1","watermark":18446744073709551616}`,
		`{"v":1, "register":"r1","watermark":3}`,
		`{"V":1,"register":"r1","watermark":3}`,
		`{"v":1,"register":"r1","watermark":3} `,
		`{"v":1,"register":"r1","watermark":3}x`,
		`{"v":1,"register":"r1","gap":4,"watermark":3}`,
		`{"v":1,"register":"r1","watermark":3,"gap":4,"gap":5}`,
		`{"v":1,"register":"é","watermark":3}`,
		`{"v":1,"register":"r1","watermark":3`,
		`{"v":-1,"register":"r1","watermark":3}`,
		`{"v":1,"register":"r1","watermark":3,"extra":1}`,
	} {
		if _, ok := decodeAckPlain([]byte(s)); ok {
			t.Errorf("%s: taken by the plain path", s)
		}
	}
}

// sameAsJSON fails unless encoding/json decodes b without error to got.
func sameAsJSON(t *testing.T, b []byte, got Ack) {
	t.Helper()
	var want Ack
	if err := lenientUnmarshal(b, &want); err != nil {
		t.Fatalf("%q: plain path took %+v, encoding/json refuses it: %v", b, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: plain path %+v, encoding/json %+v", b, got, want)
	}
}

// FuzzDecodeAckPlain: whatever the plain path takes, encoding/json
// decodes to the same Ack.
func FuzzDecodeAckPlain(f *testing.F) {
	f.Add([]byte(`{"v":1,"register":"r1","watermark":3}`))
	f.Add([]byte(`{"v":1,"register":"r1","incarnation":"a1","watermark":3,"gap":4,"gap_to":9}`))
	f.Add([]byte(`{"v":1,"register":"r1","watermark":18446744073709551615}`))
	f.Add([]byte(`{"v":0,"register":"","watermark":0,"gap":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, ok := decodeAckPlain(b); ok {
			sameAsJSON(t, b, got)
		}
	})
}

// BenchmarkDecodeAck: an ack as head office writes it, on the plain path
// and through encoding/json (the path before it).
func BenchmarkDecodeAck(b *testing.B) {
	p, err := EncodeAck(Ack{Register: "store1-r1", Incarnation: "3f2a9c1d", Watermark: 123456, Gap: 123460})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plain", func(b *testing.B) {
		for range b.N {
			if _, err := DecodeAck(p, "store1-r1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for range b.N {
			var a Ack
			if err := lenientUnmarshal(p, &a); err != nil {
				b.Fatal(err)
			}
			if err := a.validate("store1-r1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
