package cache

import (
	"hash/maphash"
	"iter"
)

// table is the cache's index of list heads by label, in place of a
// map[string]*head, whose slots (a 16-byte string header, an 8-byte pointer
// and a control byte, at 7/16 to 7/8 load) cost about 56 bytes per head. A
// slot here is the head pointer alone, since the head holds its label and
// its hash, plus a one-byte tag (8 bits of the label's hash, never 0; 0 marks an empty
// slot) that spares most string comparisons: 9 bytes per slot, at 3/8 to
// 3/4 load, so 12 to 24 bytes per head.
//
// It is open addressing with linear probing over a power-of-two number of
// slots: a label's probe starts at its hash modulo the capacity. Deletion
// shifts the following entries of the run back (no tombstones), so a
// lookup never probes further than the longest run of occupied slots,
// however many inserts and deletes came before. The table doubles when an
// insert would take it past 3/4 load and halves when a delete leaves it
// below 1/8 (never below minTable slots); in between, inserts and deletes
// allocate nothing.
//
// Labels come from the network, so the hash is maphash with a per-cache
// random seed: no one can choose labels that all probe the same run. A
// head keeps its label's hash (head.hash, set by insert), so that growing,
// shrinking and the backward shift never hash a label again, nor touch the
// label's bytes.
//
// The zero table has no slots; set seed before use. table is not safe for
// concurrent use (Cache.mu guards it).
type table struct {
	slots []*head // nil where tags is 0
	tags  []uint8
	n     int // heads in the table
	seed  maphash.Seed

	// testHash replaces the seeded hash in tests that force collisions.
	testHash func(string) uint64
}

// minTable is the capacity of a table's first slot arrays and the least it
// shrinks to.
const minTable = 8

// hash returns the hash of label that places it in t.
func (t *table) hash(label string) uint64 {
	if t.testHash != nil {
		return t.testHash(label)
	}
	return maphash.String(t.seed, label)
}

// tagOf returns the tag of hash x: its top byte, with 0 (empty) made 1.
// The slot index takes the low bits, so the two are independent.
func tagOf(x uint64) uint8 {
	tg := uint8(x >> 56)
	if tg == 0 {
		tg = 1
	}
	return tg
}

// len returns the number of heads in t.
func (t *table) len() int { return t.n }

// get returns the head labelled label, or nil. x is t.hash(label).
func (t *table) get(label string, x uint64) *head {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.tags) - 1)
	tg := tagOf(x)
	for i := x & mask; ; i = (i + 1) & mask {
		switch t.tags[i] {
		case 0:
			return nil
		case tg:
			if h := t.slots[i]; h.hash == x && h.label == label {
				return h
			}
		}
	}
}

// insert adds h, whose label must not be in t yet, and sets h.hash to x,
// which is t.hash(h.label).
func (t *table) insert(h *head, x uint64) {
	if (t.n+1)*4 > len(t.tags)*3 {
		t.resize(max(minTable, 2*len(t.tags)))
	}
	h.hash = x
	t.put(h)
	t.n++
}

// put stores h in the first free slot of its probe; there must be one.
func (t *table) put(h *head) {
	mask := uint64(len(t.tags) - 1)
	i := h.hash & mask
	for t.tags[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i], t.tags[i] = h, tagOf(h.hash)
}

// remove takes h, which must be in t, out of t.
func (t *table) remove(h *head) {
	mask := uint64(len(t.tags) - 1)
	i := h.hash & mask
	for t.slots[i] != h {
		i = (i + 1) & mask
	}
	// Backward shift: walk the rest of the run and move back into the
	// hole each entry whose probe starts at or before the hole (cyclically),
	// so that every entry stays reachable from its start without a gap.
	for j := (i + 1) & mask; t.tags[j] != 0; j = (j + 1) & mask {
		start := t.slots[j].hash & mask
		if (j-start)&mask >= (j-i)&mask {
			t.slots[i], t.tags[i] = t.slots[j], t.tags[j]
			i = j
		}
	}
	t.slots[i], t.tags[i] = nil, 0
	t.n--
	if len(t.tags) > minTable && t.n*8 < len(t.tags) {
		t.resize(len(t.tags) / 2)
	}
}

// resize moves the heads into n fresh slots (a power of two).
func (t *table) resize(n int) {
	old := t.slots
	t.slots, t.tags = make([]*head, n), make([]uint8, n)
	for _, h := range old {
		if h != nil {
			t.put(h)
		}
	}
}

// clear empties t and releases its slots.
func (t *table) clear() {
	t.slots, t.tags, t.n = nil, nil, 0
}

// all yields every head in t, in no particular order. t must not change
// meanwhile.
func (t *table) all() iter.Seq[*head] {
	return func(yield func(*head) bool) {
		for _, h := range t.slots {
			if h != nil && !yield(h) {
				return
			}
		}
	}
}
