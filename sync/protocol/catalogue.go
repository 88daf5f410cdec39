package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// KindCatalogue is the topic kind of a catalogue piece:
// loyalty/v1/<store>/catalogue/<index>, QoS 1, retained.
const KindCatalogue = "catalogue"

// Limits of a catalogue delivered in pieces. A piece document stays well
// inside the broker's message size limit (configs/mosquitto.conf:
// message_size_limit 1100000) with the signature envelope around it.
const (
	// MaxPieceSize bounds one piece document, in bytes.
	MaxPieceSize = 512 << 10
	// MaxPieces bounds the pieces of one catalogue (128 MiB of items).
	MaxPieces = 256
	// MaxCatalogueItems bounds the items of one catalogue.
	MaxCatalogueItems = 1_000_000
)

// CataloguePiecesFilter is the subscription for every piece of store's
// catalogue.
func CataloguePiecesFilter(store string) string {
	return Root + "/" + store + "/" + KindCatalogue + "/+"
}

// CataloguePieceTopic is where piece index of store's catalogue is
// published (retained).
func CataloguePieceTopic(store string, index int) string {
	return Root + "/" + store + "/" + KindCatalogue + "/" + strconv.Itoa(index)
}

// ParsePieceTopic returns the store and piece index of a catalogue piece
// topic (ErrTopic for anything else).
func ParsePieceTopic(topic string) (store string, index int, err error) {
	rest, ok := strings.CutPrefix(topic, Root+"/")
	if !ok {
		return "", 0, fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != KindCatalogue {
		return "", 0, fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	if err := ValidID(parts[0]); err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 0 || n >= MaxPieces || strconv.Itoa(n) != parts[2] {
		return "", 0, fmt.Errorf("%w: piece index in %q", ErrTopic, topic)
	}
	return parts[0], n, nil
}

// IsPieceTopic reports whether topic is a catalogue piece topic.
func IsPieceTopic(topic string) bool {
	if !strings.Contains(topic, "/"+KindCatalogue+"/") {
		return false // not one (head office asks this of every message)
	}
	_, _, err := ParsePieceTopic(topic)
	return err == nil
}

// CataloguePieces is what a store config document says about a catalogue
// delivered in pieces (docs/protocol.md, "Catalogue pieces"): how many
// items it has and the SHA-256 of each piece document, in order. A
// register applies the document only when it holds every piece, each
// matching its digest.
type CataloguePieces struct {
	Items   int      `json:"items"`
	Digests []string `json:"digests"`
}

// Count is the number of pieces.
func (p *CataloguePieces) Count() int { return len(p.Digests) }

func (p *CataloguePieces) validate() error {
	if p.Items <= 0 || p.Items > MaxCatalogueItems {
		return fmt.Errorf("config: %w: catalogue_pieces.items %d not in 1..%d", ErrMalformed, p.Items, MaxCatalogueItems)
	}
	if len(p.Digests) == 0 || len(p.Digests) > MaxPieces || len(p.Digests) > p.Items {
		return fmt.Errorf("config: %w: %d catalogue pieces (1..%d, at most one per item)", ErrMalformed, len(p.Digests), MaxPieces)
	}
	for i, d := range p.Digests {
		if b, err := hex.DecodeString(d); err != nil || len(b) != sha256.Size || strings.ToLower(d) != d {
			return fmt.Errorf("config: %w: catalogue_pieces.digests[%d] is not a lowercase hex SHA-256", ErrMalformed, i)
		}
	}
	return nil
}

// PieceDigest is the digest a manifest lists for a piece document.
func PieceDigest(doc []byte) string {
	s := sha256.Sum256(doc)
	return hex.EncodeToString(s[:])
}

// CataloguePiece is one piece of a store's catalogue: the items
// [Index] of version ConfigVersion, one of Count pieces.
type CataloguePiece struct {
	V             int       `json:"v"`
	Store         string    `json:"store"`
	ConfigVersion uint64    `json:"config_version"`
	Index         int       `json:"index"`
	Count         int       `json:"count"`
	Items         []Product `json:"items"`
}

// EncodePiece validates and encodes a piece, setting V.
func EncodePiece(p CataloguePiece) ([]byte, error) {
	p.V = Version
	if err := p.validate(p.Store, p.Index); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode piece: %w", err)
	}
	if len(b) > MaxPieceSize {
		return nil, fmt.Errorf("piece: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodePiece decodes and validates a piece that arrived on
// CataloguePieceTopic(store, index).
func DecodePiece(b []byte, store string, index int) (CataloguePiece, error) {
	var p CataloguePiece
	if len(b) > MaxPieceSize {
		return p, fmt.Errorf("piece: %w: %d bytes", ErrTooLarge, len(b))
	}
	if err := strictUnmarshal(b, &p); err != nil {
		return CataloguePiece{}, fmt.Errorf("piece: %w", err)
	}
	if err := p.validate(store, index); err != nil {
		return CataloguePiece{}, err
	}
	return p, nil
}

func (p CataloguePiece) validate(store string, index int) error {
	if p.V != Version {
		return fmt.Errorf("piece: %w: v=%d", ErrVersion, p.V)
	}
	if p.Store != store || p.Index != index {
		return fmt.Errorf("piece: %w: store %q index %d", ErrMismatch, p.Store, p.Index)
	}
	if p.ConfigVersion == 0 || p.ConfigVersion > MaxConfigVersion {
		return fmt.Errorf("piece: %w: config_version %d", ErrMalformed, p.ConfigVersion)
	}
	if p.Count <= 0 || p.Count > MaxPieces || p.Index < 0 || p.Index >= p.Count {
		return fmt.Errorf("piece: %w: index %d of %d", ErrMalformed, p.Index, p.Count)
	}
	if len(p.Items) == 0 {
		return fmt.Errorf("piece: %w: no items", ErrMalformed)
	}
	return validProducts("piece", p.Items)
}

// validProducts checks SKUs and prices as the ledger's catalogue requires.
func validProducts(what string, ps []Product) error {
	seen := make(map[string]bool, len(ps))
	for i, p := range ps {
		if p.SKU == "" || len(p.SKU) > 64 {
			return fmt.Errorf("%s: %w: item %d sku %q", what, ErrMalformed, i, p.SKU)
		}
		if seen[p.SKU] {
			return fmt.Errorf("%s: %w: item %d sku %q repeated", what, ErrMalformed, i, p.SKU)
		}
		seen[p.SKU] = true
		if p.Price <= 0 {
			return fmt.Errorf("%s: %w: item %d price %d must be positive", what, ErrMalformed, i, p.Price)
		}
	}
	return nil
}

// SplitCatalogue cuts a store's catalogue into piece documents of at most
// maxBytes each (MaxPieceSize when 0), in order, and returns them encoded
// with the manifest that lists their digests. Items keep their order.
func SplitCatalogue(store string, version uint64, items []Product, maxBytes int) ([][]byte, *CataloguePieces, error) {
	if maxBytes <= 0 || maxBytes > MaxPieceSize {
		maxBytes = MaxPieceSize
	}
	if len(items) == 0 || len(items) > MaxCatalogueItems {
		return nil, nil, fmt.Errorf("catalogue: %w: %d items (1..%d)", ErrMalformed, len(items), MaxCatalogueItems)
	}
	if err := validProducts("catalogue", items); err != nil {
		return nil, nil, err
	}
	const envelope = 160 // the piece's own fields around its items
	var cuts []int       // start of each piece
	size := envelope
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			return nil, nil, err
		}
		if len(b)+1+envelope > maxBytes {
			return nil, nil, fmt.Errorf("catalogue: %w: item %q alone is %d bytes", ErrTooLarge, it.SKU, len(b))
		}
		if i == 0 || size+len(b)+1 > maxBytes {
			cuts = append(cuts, i)
			size = envelope
		}
		size += len(b) + 1
	}
	if len(cuts) > MaxPieces {
		return nil, nil, fmt.Errorf("catalogue: %w: %d pieces, at most %d", ErrTooLarge, len(cuts), MaxPieces)
	}
	docs := make([][]byte, len(cuts))
	m := &CataloguePieces{Items: len(items), Digests: make([]string, len(cuts))}
	for k, start := range cuts {
		end := len(items)
		if k+1 < len(cuts) {
			end = cuts[k+1]
		}
		b, err := EncodePiece(CataloguePiece{Store: store, ConfigVersion: version, Index: k, Count: len(cuts), Items: items[start:end]})
		if err != nil {
			return nil, nil, err
		}
		docs[k] = b
		m.Digests[k] = PieceDigest(b)
	}
	return docs, m, nil
}
