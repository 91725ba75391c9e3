package cache

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkTable fails t unless tb is consistent: slot arrays of one
// power-of-two length, n heads, every head tagged with its hash and
// reachable from its probe start without an empty slot in between, load at
// most 3/4, and at least 1/8 unless at the least capacity.
func checkTable(t *testing.T, tb *table) {
	t.Helper()
	c := len(tb.tags)
	if len(tb.slots) != c {
		t.Fatalf("%d slots, %d tags", len(tb.slots), c)
	}
	if c == 0 {
		if tb.n != 0 {
			t.Fatalf("no slots, n = %d", tb.n)
		}
		return
	}
	if c < minTable || c&(c-1) != 0 {
		t.Fatalf("capacity %d: want a power of two >= %d", c, minTable)
	}
	if tb.n*4 > c*3 {
		t.Fatalf("%d heads in %d slots: over 3/4 load", tb.n, c)
	}
	if c > minTable && tb.n*8 < c {
		t.Fatalf("%d heads in %d slots: under 1/8 load, not shrunk", tb.n, c)
	}
	mask := uint64(c - 1)
	n := 0
	for i, h := range tb.slots {
		if (h == nil) != (tb.tags[i] == 0) {
			t.Fatalf("slot %d: head %v, tag %d", i, h, tb.tags[i])
		}
		if h == nil {
			continue
		}
		n++
		x := tb.hash(h.label)
		if h.hash != x {
			t.Fatalf("slot %d (%q): head.hash %#x, want %#x", i, h.label, h.hash, x)
		}
		if tb.tags[i] != tagOf(x) {
			t.Fatalf("slot %d (%q): tag %#x, want %#x", i, h.label, tb.tags[i], tagOf(x))
		}
		for j := x & mask; j != uint64(i); j = (j + 1) & mask {
			if tb.tags[j] == 0 {
				t.Fatalf("slot %d (%q): empty slot %d between it and its start %d", i, h.label, j, x&mask)
			}
		}
	}
	if n != tb.n {
		t.Fatalf("%d heads in slots, n = %d", n, tb.n)
	}
}

// tableLabels returns the labels in tb, sorted.
func tableLabels(tb *table) []string {
	var l []string
	for h := range tb.all() {
		l = append(l, h.label)
	}
	slices.Sort(l)
	return l
}

// Hashes that force collisions: each maps labels onto few values, so that
// runs are long, tags collide and backward shifts cross the wrap-around.
var tableTestHashes = []struct {
	name string
	hash func(string) uint64 // nil: the seeded maphash
}{
	{"maphash", nil},
	{"constant", func(string) uint64 { return 0xabcd_0000_0000_0007 }},
	{"sameTag", func(s string) uint64 { return 0x4200_0000_0000_0000 | uint64(len(s)) }},
	{"fewStarts", func(s string) uint64 {
		x := uint64(14695981039346656037) // FNV-1a
		for i := range len(s) {
			x = (x ^ uint64(s[i])) * 1099511628211
		}
		return x%5<<56 | x&7 // 5 tags, starts 0..7 of every capacity
	}},
	{"wrap", func(s string) uint64 { return 0x0100_0000_0000_0000 | uint64(len(s)+5) }},
}

func newTestTable(hash func(string) uint64) *table {
	return &table{seed: maphash.MakeSeed(), testHash: hash}
}

func TestTable_ops(t *testing.T) {
	type op struct {
		do    byte   // 'p'ut (absent), 'g'et, 'd'elete (present)
		label string //
		found bool   // get: want it present
	}
	tests := []struct {
		name string
		ops  []op
		want []string
		cap  int
	}{
		{"empty get", []op{{'g', "a", false}}, nil, 0},
		{"put get", []op{{'p', "a", false}, {'g', "a", true}, {'g', "b", false}}, []string{"a"}, minTable},
		{"delete", []op{{'p', "a", false}, {'p', "b", false}, {'d', "a", false}, {'g', "a", false}, {'g', "b", true}},
			[]string{"b"}, minTable},
		{"delete all", []op{{'p', "a", false}, {'d', "a", false}, {'g', "a", false}}, nil, minTable},
		{"empty label", []op{{'p', "", false}, {'g', "", true}, {'g', "a", false}, {'d', "", false}}, nil, minTable},
		{"reinsert", []op{{'p', "a", false}, {'d', "a", false}, {'p', "a", false}, {'g', "a", true}}, []string{"a"}, minTable},
		{"six fit", []op{{'p', "a", false}, {'p', "bb", false}, {'p', "ccc", false}, {'p', "dddd", false},
			{'p', "eeeee", false}, {'p', "ffffff", false}}, []string{"a", "bb", "ccc", "dddd", "eeeee", "ffffff"}, minTable},
		{"seventh grows", []op{{'p', "a", false}, {'p', "bb", false}, {'p', "ccc", false}, {'p', "dddd", false},
			{'p', "eeeee", false}, {'p', "ffffff", false}, {'p', "ggggggg", false}, {'g', "a", true}, {'g', "ggggggg", true}},
			[]string{"a", "bb", "ccc", "dddd", "eeeee", "ffffff", "ggggggg"}, 2 * minTable},
		{"middle of run", []op{{'p', "a", false}, {'p', "bb", false}, {'p', "ccc", false}, {'d', "bb", false},
			{'g', "a", true}, {'g', "bb", false}, {'g', "ccc", true}}, []string{"a", "ccc"}, minTable},
	}
	for _, hs := range tableTestHashes {
		for _, tt := range tests {
			t.Run(hs.name+"/"+tt.name, func(t *testing.T) {
				tb := newTestTable(hs.hash)
				heads := map[string]*head{}
				for i, o := range tt.ops {
					x := tb.hash(o.label)
					switch o.do {
					case 'p':
						h := &head{label: o.label}
						heads[o.label] = h
						tb.insert(h, x)
					case 'g':
						h := tb.get(o.label, x)
						if (h != nil) != o.found || (h != nil && h != heads[o.label]) {
							t.Fatalf("op %d: get(%q) = %v, want found %v (%p)", i, o.label, h, o.found, heads[o.label])
						}
					case 'd':
						tb.remove(heads[o.label])
						delete(heads, o.label)
					}
					checkTable(t, tb)
				}
				if diff := cmp.Diff(tt.want, tableLabels(tb)); diff != "" {
					t.Errorf("labels (-want +got):\n%s", diff)
				}
				if tb.len() != len(tt.want) || len(tb.tags) != tt.cap {
					t.Errorf("len %d, capacity %d; want %d, %d", tb.len(), len(tb.tags), len(tt.want), tt.cap)
				}
			})
		}
	}
}

// TestTable_growShrink fills a table and empties it again: the capacity
// doubles past 3/4 load and halves under 1/8, down to minTable, and every
// label stays found.
func TestTable_growShrink(t *testing.T) {
	tests := []struct {
		n       int
		fullCap int // after n inserts
	}{
		{6, 8}, {7, 16}, {12, 16}, {13, 32}, {1000, 2048}, {3072, 4096}, {3073, 8192},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			tb := newTestTable(nil)
			heads := make([]*head, tt.n)
			for i := range heads {
				heads[i] = &head{label: fmt.Sprintf("smtp\n10.0.%d.%d\n25\n", i>>8, i&255)}
				tb.insert(heads[i], tb.hash(heads[i].label))
			}
			checkTable(t, tb)
			if len(tb.tags) != tt.fullCap {
				t.Errorf("capacity %d after %d inserts, want %d", len(tb.tags), tt.n, tt.fullCap)
			}
			for i, h := range heads {
				if got := tb.get(h.label, tb.hash(h.label)); got != h {
					t.Fatalf("get(%q) = %p, want %p", h.label, got, h)
				}
				tb.remove(h)
				if left := tt.n - i - 1; len(tb.tags) > minTable && left*8 < len(tb.tags) {
					t.Fatalf("%d left in %d slots: not shrunk", left, len(tb.tags))
				}
			}
			checkTable(t, tb)
			if tb.len() != 0 || len(tb.tags) != minTable {
				t.Errorf("emptied: len %d, capacity %d; want 0, %d", tb.len(), len(tb.tags), minTable)
			}
			tb.clear()
			checkTable(t, tb)
			if tb.get("x", tb.hash("x")) != nil {
				t.Errorf("get after clear found something")
			}
		})
	}
}

// TestTable_random runs random puts, gets and deletes (many of them on
// colliding labels) against a Go map, checking the table after each.
func TestTable_random(t *testing.T) {
	for _, hs := range tableTestHashes {
		for _, keys := range []int{10, 100, 300, 3000} {
			if hs.hash != nil && keys > 300 {
				continue // every run is one long run: quadratic
			}
			t.Run(fmt.Sprintf("%s/keys=%d", hs.name, keys), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, uint64(keys)))
				tb := newTestTable(hs.hash)
				ref := map[string]*head{}
				ops := 20 * keys
				for i := range ops {
					label := fmt.Sprint("k", rng.IntN(keys))
					// Fill for the first half, empty towards the end.
					putBias := 60
					if i > ops/2 {
						putBias = 30
					}
					tableStep(t, tb, ref, label, rng.IntN(100) < putBias)
					if keys <= 100 || i%97 == 0 {
						checkTable(t, tb)
					}
				}
				checkTable(t, tb)
				want := slices.Sorted(func(yield func(string) bool) {
					for k := range ref {
						if !yield(k) {
							return
						}
					}
				})
				if diff := cmp.Diff(want, tableLabels(tb)); diff != "" {
					t.Errorf("labels (-map +table):\n%s", diff)
				}
			})
		}
	}
}

// tableStep checks get(label) against ref, then puts label if put and it
// is absent, or deletes it if !put and it is present, in both.
func tableStep(t *testing.T, tb *table, ref map[string]*head, label string, put bool) {
	t.Helper()
	x := tb.hash(label)
	got, want := tb.get(label, x), ref[label]
	if got != want {
		t.Fatalf("get(%q) = %p, map has %p", label, got, want)
	}
	switch {
	case put && want == nil:
		h := &head{label: label}
		tb.insert(h, x)
		ref[label] = h
	case !put && want != nil:
		tb.remove(want)
		delete(ref, label)
	}
	if tb.len() != len(ref) {
		t.Fatalf("len %d, map has %d", tb.len(), len(ref))
	}
}

// FuzzTable reads the input as operations on a table, checked against a Go
// map: the first byte picks the hash (see tableTestHashes), then each byte
// is an op (low bit: put or delete; both look the label up first) on one of
// 128 labels.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3})
	f.Add([]byte{1, 0, 2, 4, 6, 8, 10, 12, 14, 16, 1, 5, 9, 2, 3, 7})
	f.Add([]byte{4, 0, 2, 4, 6, 8, 10, 12, 1, 5, 9, 13, 3, 7, 11})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		hs := tableTestHashes[int(b[0])%len(tableTestHashes)]
		tb := newTestTable(hs.hash)
		ref := map[string]*head{}
		for _, o := range b[1:] {
			label := string([]byte{'k', o >> 1})
			if o>>1 >= 64 {
				label = fmt.Sprintf("smtp\n192.0.2.%d\n25\n", o>>1)
			}
			tableStep(t, tb, ref, label, o&1 == 0)
			checkTable(t, tb)
		}
		for label, h := range ref {
			if got := tb.get(label, tb.hash(label)); got != h {
				t.Fatalf("get(%q) = %p at the end, want %p", label, got, h)
			}
		}
	})
}
