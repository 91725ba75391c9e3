package cache

import (
	"container/heap"
	"time"
)

// Expiry bookkeeping.
//
// Entries saved with the same ttl expire in the order they were saved,
// because the clock only moves forward. So instead of one heap of every
// entry, the cache keeps one deadline-ordered list per ttl value (a "ttl
// class"), separately for sessions and for bindings, and a small heap of
// classes ordered by their first deadline. Scheduling appends at a class's
// tail, unscheduling unlinks in place, and only a change of a class's first
// entry touches the class heap: every step is O(1) in the number of cached
// entries and O(log k) in the number k of distinct ttls in use (one or two:
// smtp(8) always sends its connection cache time limit, and the server
// clamps ttls to whole seconds up to connection_cache_ttl_limit). The
// common operations touch only the class tail and the entry's neighbours,
// which keeps them cheap when the cache is far larger than the CPU caches.

// classKey identifies a ttl class.
type classKey struct {
	ttl  time.Duration
	sess bool
}

// ttlClass lists the entries of one kind saved with one ttl, earliest
// deadline first.
type ttlClass struct {
	key         classKey
	first, last *entry
	idx         int // index in Cache.classes
}

// schedule gives e the deadline now+ttl at the tail of its class of
// sessions (sess) or bindings. c.mu must be held; now must not be before
// any earlier now.
func (c *Cache) schedule(e *entry, ttl time.Duration, now int64, sess bool) {
	if ttl < 0 {
		ttl = 0
	}
	e.expires = now + int64(ttl)
	k := classKey{ttl, sess}
	cl := c.byTTL[k]
	if cl != nil {
		// A class in the map is not empty: e goes to its tail, and its
		// first deadline, which orders the heap, stays.
		e.cls = cl
		e.tprev, e.tnext = cl.last, nil
		cl.last.tnext = e
		cl.last = e
		return
	}
	cl = c.newClass(k)
	c.byTTL[k] = cl
	e.cls = cl
	e.tprev, e.tnext = nil, nil
	cl.first, cl.last = e, e
	heap.Push(&c.classes, cl)
}

// unschedule removes e from its class. c.mu must be held.
func (c *Cache) unschedule(e *entry) {
	cl := e.cls
	if e.tprev != nil {
		e.tprev.tnext = e.tnext
	} else {
		cl.first = e.tnext
	}
	if e.tnext != nil {
		e.tnext.tprev = e.tprev
	} else {
		cl.last = e.tprev
	}
	wasFirst := e.tprev == nil
	e.tprev, e.tnext, e.cls = nil, nil, nil
	switch {
	case cl.first == nil:
		delete(c.byTTL, cl.key)
		heap.Remove(&c.classes, cl.idx)
		c.freeClass(cl)
	case wasFirst:
		heap.Fix(&c.classes, cl.idx)
	}
}

// newClass returns an empty ttl class for k, recycled if possible: a class
// empties and comes back whenever the only session of its ttl is found and
// saved again (see freelist.go). c.mu must be held.
func (c *Cache) newClass(k classKey) *ttlClass {
	if cl := popFree(&c.freeClasses); cl != nil {
		cl.key = k
		return cl
	}
	return &ttlClass{key: k}
}

// freeClass recycles a class that left the map and the heap. c.mu must be
// held.
func (c *Cache) freeClass(cl *ttlClass) {
	*cl = ttlClass{}
	if len(c.freeClasses) < maxFree {
		c.freeClasses = append(c.freeClasses, cl)
	}
}

// next returns the entry with the earliest deadline, or nil.
func (c *Cache) next() *entry {
	if len(c.classes) == 0 {
		return nil
	}
	return c.classes[0].first
}

// classHeap orders the non-empty ttl classes by the deadline of their
// first entry, as a container/heap. There are one or two classes in use
// (see the top of this file), but the server takes ttls of up to
// connection_cache_ttl_limit whole seconds, so a heap keeps a pathological
// client's many ttls at O(log k) per change.
type classHeap []*ttlClass

func (h classHeap) Len() int           { return len(h) }
func (h classHeap) Less(i, j int) bool { return h[i].first.expires < h[j].first.expires }

func (h classHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

// Push and Pop are for container/heap only.
func (h *classHeap) Push(x any) {
	cl := x.(*ttlClass)
	cl.idx = len(*h)
	*h = append(*h, cl)
}

func (h *classHeap) Pop() any {
	s := *h
	n := len(s) - 1
	cl := s[n]
	s[n] = nil
	*h = s[:n]
	return cl
}

// expirySlack is the least time between two runs of expire while the next
// deadline is still ahead: entries whose deadlines fall within it of each
// other expire in one batch, up to expirySlack late. With fresh labels at
// thousands of saves a second, deadlines are microseconds apart, and a
// timer armed for each would start thousands of goroutines a second, each
// contending for c.mu and waking a thread; batched, expiry is a hundred
// short runs a second at most. Postfix's own timers have a resolution of
// one second, so an entry outliving its ttl by this much is within what
// scache does. An entry already due (ttl 0) is expired at once.
const expirySlack = 10 * time.Millisecond

// arm makes sure the timer fires no later than the earliest deadline plus
// expirySlack, or at once when that deadline has passed. A timer armed for
// an earlier time than needed (its entry was removed since) is left alone:
// expire then finds nothing due and re-arms. now is the cache clock of the
// caller; c.mu must be held.
func (c *Cache) arm(now int64) {
	first := c.next()
	if first == nil || c.closed {
		return
	}
	next := first.expires
	latest := next // the latest acceptable firing
	if next > now {
		latest += int64(expirySlack)
	}
	if c.armed && c.armedAt <= latest {
		return
	}
	d := time.Duration(0)
	if next > now {
		d = max(time.Duration(next-now), expirySlack)
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.expire)
	} else {
		c.timer.Reset(d)
	}
	c.armed, c.armedAt = true, now+int64(d)
}

// expire runs on the timer: it removes every entry whose deadline has
// passed, closes the descriptors of expired sessions, and re-arms.
func (c *Cache) expire() {
	c.mu.Lock()
	c.armed = false
	c.expireRuns++
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := c.now()
	var fds []int
	for e := c.next(); e != nil && e.expires <= now; e = c.next() {
		if !e.cls.key.sess {
			c.removeBinding(e)
			c.evict.ExpiredBindings++
		} else {
			fds = append(fds, e.fd)
			c.removeSession(e)
			c.evict.Expired++
		}
		c.freeEntry(e)
	}
	c.arm(now)
	c.unlockAndDrop(fds)
}
