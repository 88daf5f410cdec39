package uplink_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestPiecesAskedAgain: a store document whose catalogue comes in pieces
// makes the uplink subscribe to the store's pieces (the broker sends the
// retained ones); while pieces are missing and none arrives for
// PieceTimeout it subscribes again (asks for the whole version again),
// never while pieces keep coming, and never once the version is in force.
func TestPiecesAskedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key, err := signing.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := signing.NewKeyring(key.Public())
		items := []protocol.Product{{SKU: "a", Name: "A", Price: 1}, {SKU: "b", Name: "B", Price: 2}}
		docs, m, err := protocol.SplitCatalogue("s1", 3, items, 200) // one item per piece
		if err != nil || len(docs) != 2 {
			t.Fatalf("%d pieces, %v", len(docs), err)
		}
		var mu sync.Mutex
		var asked int
		have := map[int]bool{}
		fb := &fakeBroker{onSubscribe: countPieceAsks(&mu, &asked)}
		status := func() uplink.Pieces {
			mu.Lock()
			defer mu.Unlock()
			p := uplink.Pieces{Version: 3, Want: 2}
			for i := range 2 {
				if have[i] {
					p.Have++
				} else {
					p.Missing = append(p.Missing, i)
				}
			}
			p.Applied = p.Have == 2
			return p
		}
		u := run(t, newFakeOutbox(0), fb, uplink.Options{Keys: keys, PieceTimeout: 30 * time.Second,
			OnPiecedConfig: func(context.Context, protocol.Config) (uplink.Pieces, error) { return status(), nil },
			OnPiece: func(_ context.Context, p protocol.CataloguePiece, digest string) (uplink.Pieces, error) {
				if digest != m.Digests[p.Index] {
					t.Errorf("piece %d digest %s", p.Index, digest)
				}
				mu.Lock()
				have[p.Index] = true
				mu.Unlock()
				return status(), nil
			},
		})
		seal := func(topic string, doc []byte) []byte {
			b, err := key.Seal(topic, doc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		askedSoFar := func() int { mu.Lock(); defer mu.Unlock(); return asked }
		manifest, err := protocol.EncodeConfig(protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 3, CataloguePieces: m})
		if err != nil {
			t.Fatal(err)
		}
		fb.deliver(protocol.StoreConfigTopic("s1"), seal(protocol.StoreConfigTopic("s1"), manifest), false)
		synctest.Wait()
		if n := askedSoFar(); n != 1 {
			t.Fatalf("asked %d times for the pieces after the document, want 1", n)
		}
		if p := u.Status().Pieces; p == nil || p.Version != 3 || p.Want != 2 || !slices.Equal(p.Missing, []int{0, 1}) {
			t.Fatalf("status while waiting: %+v", p)
		}
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if n := askedSoFar(); n != 2 {
			t.Fatalf("asked %d times after 31 s without a piece, want 2", n)
		}
		fb.deliver(protocol.CataloguePieceTopic("s1", 0), seal(protocol.CataloguePieceTopic("s1", 0), docs[0]), false)
		synctest.Wait()
		time.Sleep(20 * time.Second) // a piece came 20 s ago: not yet
		synctest.Wait()
		if n := askedSoFar(); n != 2 {
			t.Fatalf("asked %d times 20 s after a piece, want 2", n)
		}
		time.Sleep(20 * time.Second) // within 1.25 x PieceTimeout of the last piece
		synctest.Wait()
		if n := askedSoFar(); n != 3 {
			t.Fatalf("asked %d times 40 s after the last piece, want 3", n)
		}
		if p := u.Status().Pieces; p == nil || p.Have != 1 || p.Fetches != 3 || !slices.Equal(p.Missing, []int{1}) {
			t.Fatalf("status with piece 1 missing: %+v", p)
		}
		fb.deliver(protocol.CataloguePieceTopic("s1", 1), seal(protocol.CataloguePieceTopic("s1", 1), docs[1]), false)
		synctest.Wait()
		if st := u.Status(); st.Pieces != nil || st.Config.Store != 3 || st.ConfigError != "" {
			t.Fatalf("after the last piece: pieces %+v, store version %d, error %q", st.Pieces, st.Config.Store, st.ConfigError)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := askedSoFar(); n != 3 {
			t.Fatalf("asked %d times after the version went in force, want 3", n)
		}
	})
}

// TestPiecesSupersededByANewerDocument: while a store document (v3) waits
// for its catalogue pieces, a newer store document (v4) with its catalogue
// inline goes in force. v3's delivery is over (the ledger dropped its
// staging): status no longer shows it waiting and the uplink stops asking
// the broker for its pieces. Before, both went on until a restart.
func TestPiecesSupersededByANewerDocument(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key, err := signing.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := signing.NewKeyring(key.Public())
		items := []protocol.Product{{SKU: "a", Name: "A", Price: 1}, {SKU: "b", Name: "B", Price: 2}}
		_, m, err := protocol.SplitCatalogue("s1", 3, items, 200)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var asked int
		var applied []uint64
		fb := &fakeBroker{onSubscribe: countPieceAsks(&mu, &asked)}
		u := run(t, newFakeOutbox(0), fb, uplink.Options{Keys: keys, PieceTimeout: 30 * time.Second,
			OnPiecedConfig: func(context.Context, protocol.Config) (uplink.Pieces, error) {
				return uplink.Pieces{Version: 3, Want: 2, Missing: []int{0, 1}}, nil
			},
			OnConfig: func(_ context.Context, c protocol.Config) error {
				mu.Lock()
				applied = append(applied, c.ConfigVersion)
				mu.Unlock()
				return nil
			},
		})
		send := func(c protocol.Config) {
			doc, err := protocol.EncodeConfig(c)
			if err != nil {
				t.Fatal(err)
			}
			topic := protocol.StoreConfigTopic("s1")
			b, err := key.Seal(topic, doc)
			if err != nil {
				t.Fatal(err)
			}
			fb.deliver(topic, b, false)
			synctest.Wait()
		}
		askedSoFar := func() int { mu.Lock(); defer mu.Unlock(); return asked }
		send(protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 3, CataloguePieces: m})
		if p := u.Status().Pieces; p == nil || p.Version != 3 || askedSoFar() != 1 {
			t.Fatalf("waiting for v3's pieces: %+v, asked %d", p, askedSoFar())
		}
		send(protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 4, Catalogue: []protocol.Product{{SKU: "c", Name: "C", Price: 3}}})
		st := u.Status()
		if st.Pieces != nil || st.Config.Store != 4 || st.ConfigError != "" {
			t.Fatalf("after store v4 went in force: pieces %+v, store version %d, error %q", st.Pieces, st.Config.Store, st.ConfigError)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := askedSoFar(); n != 1 {
			t.Fatalf("asked %d times for v3's pieces after v4 went in force, want 1", n)
		}
		mu.Lock()
		got := slices.Clone(applied)
		mu.Unlock()
		if !slices.Equal(got, []uint64{4}) {
			t.Fatalf("OnConfig called for %v, want [4]", got)
		}
	})
}

// countPieceAsks counts, under mu, the subscriptions to the store's
// catalogue pieces: how the uplink asks the broker for them.
func countPieceAsks(mu *sync.Mutex, asked *int) func(map[string]byte) {
	return func(filters map[string]byte) {
		if _, ok := filters[protocol.CataloguePiecesFilter("s1")]; ok {
			mu.Lock()
			*asked++
			mu.Unlock()
		}
	}
}
