package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// AdoptCheck decides whether head office may adopt incarnation inc as
// register's stream, given the register's state and the lowest sequence
// number of inc's events held for review (0: none): inc must be another
// incarnation whose held events continue the stream (the first is the
// watermark + 1), as a register replacing a dead one sends (its new
// ledger continued after head office's last ack). Shared by the backends.
func AdoptCheck(rs RegisterState, inc string, first uint64) error {
	switch {
	case rs.Store == "":
		return fmt.Errorf("adopt %s: head office has never heard from this register: %w", rs.Register, ErrInvalid)
	case inc == "" || inc == rs.Incarnation:
		return fmt.Errorf("adopt %s: incarnation %q is the one head office follows: %w", rs.Register, inc, ErrInvalid)
	case first == 0:
		return fmt.Errorf("adopt %s: head office holds no events of incarnation %.8s: %w", rs.Register, inc, ErrInvalid)
	case first != rs.Watermark+1:
		return fmt.Errorf("adopt %s: the events of incarnation %.8s start at %d, head office's stream at %d: that ledger does not continue "+
			"this register's stream (a second register with the same id? give it its own register.id): %w", rs.Register, inc, first, rs.Watermark+1, ErrInvalid)
	}
	return nil
}

// AdoptIncarnation confirms that incarnation inc replaces the one head
// office follows for register (a replaced card: docs/operations.md
// "Replacing a register"): from now on inc's events are applied, the ones
// held for review as another incarnation are released (the register
// keeps them and resends them), and the old incarnation's events are held
// from now on. It returns how many held events were released.
func (s *Store) AdoptIncarnation(register, inc string) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		rs, err := loadReg(tx, register)
		if err != nil {
			return err
		}
		var del [][]byte
		var first uint64
		if b := tx.Bucket(bReview); b != nil {
			p := reviewPrefix(register, inc)
			c := b.Cursor()
			for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
				var r heldRec
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("review %q: %w", k, err)
				}
				if r.Reason != ReviewIncarnation {
					continue
				}
				if first == 0 {
					first = binary.BigEndian.Uint64(k[len(p):])
				}
				del = append(del, append([]byte(nil), k...))
			}
			if err := AdoptCheck(rs, inc, first); err != nil {
				return err
			}
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		} else if err := AdoptCheck(rs, inc, 0); err != nil {
			return err
		}
		n = len(del)
		rs.Review -= min(rs.Review, uint64(n))
		rs.Follow(inc)
		v, err := json.Marshal(rs)
		if err != nil {
			return err
		}
		return tx.Bucket(bRegs).Put([]byte(register), v)
	})
	return n, err
}
