package cache

// head is a list of bindings (destination) or sessions (endpoint), oldest
// first. Postfix uses a circular ring with a head node; here the first
// entry's prev points to the last (the last's next is nil), which gives the
// same append-at-tail, iterate-from-oldest behaviour with one pointer in the
// head. Whether it lists bindings or sessions is known from the map that
// holds it (Cache.dests, Cache.endps), whose key is its label.
type head struct {
	label string
	first *entry // first.prev is the last entry
}

// entry is a destination binding or a session. One type for both keeps
// the expiry lists simple. It is 104 bytes (the 112-byte size class), one
// field per fact. It used to be packed into 80 bytes (a binding's
// properties and endpoint label in one string, the descriptor and the
// creation time in one word, the ttl class as a 4-byte index, the creation
// time of a session derived from its deadline): 64 B less per cached
// connection, about a seventh of its heap, where the whole is under half of
// real scache's ~1000 B of RSS. Not worth the puzzle (issue 20 §5).
type entry struct {
	prev, next   *entry // neighbours in h's list (see head)
	h            *head
	prop         string    // binding: destination properties; session: endpoint properties
	endp         string    // binding: endpoint label; session: ""
	fd           int       // session: its descriptor; binding: -1
	created      int64     // when first saved, nanoseconds since Cache.base
	expires      int64     // nanoseconds since Cache.base
	tprev, tnext *entry    // neighbours in the expiry list
	cls          *ttlClass // its expiry list (expiry.go)
}

// append adds e at the tail of h.
func (h *head) append(e *entry) {
	e.next = nil
	if h.first == nil {
		h.first, e.prev = e, e
		return
	}
	last := h.first.prev
	last.next, e.prev = e, last
	h.first.prev = e
}

// remove unlinks e from h and reports whether h became empty.
func (h *head) remove(e *entry) bool {
	switch {
	case e == h.first:
		h.first = e.next
		if h.first != nil {
			h.first.prev = e.prev // the last
		}
	case e.next == nil: // the last
		e.prev.next = nil
		h.first.prev = e.prev
	default:
		e.prev.next = e.next
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
	return h.first == nil
}
