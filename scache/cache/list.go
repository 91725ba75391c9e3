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
// the expiry lists simple. It is 80 bytes, a size class of its own (one
// cached connection holds two), so nothing that can be derived is stored:
// a binding keeps its destination properties and endpoint label in one
// string (one allocation, one string header), a session's endpoint
// properties fill it whole; whether it is a session is its ttl class's
// key.sess, and a session's creation time is its deadline minus its
// class's ttl (sessions are never rescheduled).
type entry struct {
	prev, next   *entry // neighbours in h's list (see head)
	h            *head
	s            string // binding: destination properties + endpoint label; session: endpoint properties
	expires      int64  // nanoseconds since Cache.base
	aux          int64  // session: its descriptor; binding: when it was created (like expires)
	tprev, tnext *entry // neighbours in the expiry list
	split        int32  // binding: where the endpoint label starts in s; session: len(s)
	cls          int32  // expiry list: index in Cache.classTab (cache_expiry.go)
}

// prop returns a binding's destination properties or a session's endpoint
// properties.
func (e *entry) prop() string { return e.s[:e.split] }

// endp returns a binding's endpoint label ("" for a session).
func (e *entry) endp() string { return e.s[e.split:] }

// fd returns a session's descriptor.
func (e *entry) fd() int { return int(e.aux) }

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
