// Package cache is Postfix's multi-session connection cache
// (global/scache_multi.c) for the server of package
// github.com/goscache/goscache/scache/server, usable on its own: a [Cache]
// maps destination labels to endpoint bindings and endpoint labels to
// cached sessions (descriptors), each entry with its own ttl. It owns the
// descriptors it holds and copies the strings it keeps.
package cache

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goscache/goscache/scache/internal/errs"
	"golang.org/x/sys/unix"
)

// Options configures a [Cache]; the zero value of every field means its
// default.
type Options struct {
	// MaxSessions bounds the number of cached sessions: when a save
	// exceeds it, the oldest session of the whole cache is evicted and its
	// descriptor closed (counted in Evictions.Limit). 0 means the share of
	// RLIMIT_NOFILE that [DescriptorBudget] leaves to cached sessions, so
	// that a server never runs out of descriptors for its clients; a
	// negative value means no limit, as in Postfix.
	MaxSessions int
	// Logger receives Postfix-text warnings such as
	// "scache_multi_drop_endp: close(7): Bad file descriptor". nil discards.
	Logger *slog.Logger
	// KeepDead hands out cached sessions whose peer has closed the
	// connection or sent unsolicited data, as Postfix's scache does. By
	// default a find checks each candidate with a non-blocking MSG_PEEK
	// recv(2), which consumes nothing and does not modify the descriptor, and drops a
	// dead one (counted in Evictions.Dead) before trying the next, so that
	// smtp(8) is not handed a connection that would fail its RSET probe.
	KeepDead bool
}

// Size is the cache population as Postfix's scache_multi_size reports it.
type Size struct {
	Dests    int // destination labels that have at least one binding
	Endps    int // endpoint labels that have at least one session
	Sessions int // cached sessions (descriptors)
}

// Evictions counts cached sessions (descriptors) that left the cache
// without being handed out, by reason, plus expired destination bindings.
type Evictions struct {
	Expired         int64 // sessions whose ttl ran out
	Limit           int64 // sessions evicted because MaxSessions was exceeded
	Closed          int64 // sessions closed by Close, or saved after Close
	ExpiredBindings int64 // destination bindings whose ttl ran out
	Dead            int64 // sessions found dead (peer closed or spoke) by a find
}

// Cache is Postfix's multi-session connection cache with the semantics of
// global/scache_multi.c: destination labels map to ordered endpoint bindings
// (with destination properties), endpoint labels map to FIFO lists of
// sessions (descriptor plus endpoint properties). Every entry has its own
// ttl. Every operation costs O(1) in the number of cached entries: maps,
// intrusive lists, and deadline-ordered lists per ttl value under a
// small heap, served by a single timer (see expiry.go).
//
// The cache owns every descriptor it holds and closes each exactly once: on
// expiry, on MaxSessions eviction, or at Close. A descriptor returned by a
// find belongs to the caller. Cached descriptors are otherwise never touched.
//
// Memory: SaveEndp and SaveDest keep copies of the strings they are given,
// never the strings themselves, so a caller may pass strings that alias a
// buffer it reuses once the call has returned (the server passes its read
// buffers). Equal strings already held are shared instead of copied again.
//
// Cache is safe for concurrent use. Create it with [New].
type Cache struct {
	log     *slog.Logger
	max     int
	closeFD func(fd int) error     // unix.Close; replaced by tests only
	alive   func(fd int) peerState // peekAlive, or nil to hand out dead sessions too
	base    time.Time              // origin of the int64 clock below

	// dropping counts descriptors taken out of the cache under mu and
	// being closed (or checked by a find, see checkOut) outside it, so
	// that Close can wait for them: when Close returns, every descriptor
	// the cache ever owned is closed or handed out.
	dropping sync.WaitGroup

	mu       sync.Mutex
	dests    map[string]*head // destination lists by label
	endps    map[string]*head // endpoint lists by label
	seed     maphash.Seed     // of recentSlot's hash
	sessions int
	byTTL    map[classKey]*ttlClass // see expiry.go
	classes  classHeap
	timer    *time.Timer
	armed    bool  // timer is pending (or its callback has not yet run)
	armedAt  int64 // when the timer fires, on the cache clock
	// expireRuns counts runs of expire, for the batching test.
	expireRuns int
	closed     bool
	evict      Evictions
	// nonSockets counts handed-out descriptors that were not sockets.
	nonSockets atomic.Int64

	// recentEndps holds the endpoint labels of recent SaveDest calls, as
	// their bindings hold them, in a slot chosen by hash: each smtp(8)
	// process sends save_dest just before save_endp of the same endpoint,
	// so SaveEndp finds the binding's copy there and shares it instead of
	// keeping a second one, even with many clients interleaved. With
	// recentProps, this sharing takes a cached connection with its binding
	// from 534 to 430 B of heap (BenchmarkCache_memory/with-binding) and
	// keeps smtp(8)'s cycle on known labels from allocating 2 strings,
	// 56 B, per cycle (TestServer_cycleAllocs).
	recentEndps [recentEndps]string
	// recentProps holds, per recentEndps slot of an endpoint label, the
	// endpoint properties last saved by the server for it, so that a
	// session saved again with the same properties shares their copy.
	recentProps [recentEndps]string

	// Recycled structs (see newEntry): the steady state of find and save
	// then allocates nothing, so a large cache costs no GC work per request.
	freeEntries *entry // linked through next
	nFreeE      int
	freeHeads   []*head
	freeClasses []*ttlClass
}

// New returns an empty cache configured by opts.
func New(opts Options) *Cache {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	alive := peekAlive
	if opts.KeepDead {
		alive = nil
	}
	maxSessions := opts.MaxSessions
	if maxSessions == 0 {
		_, maxSessions = DescriptorBudget(NoFileLimit())
	}
	seed := maphash.MakeSeed()
	return &Cache{
		log:     lg,
		max:     maxSessions,
		closeFD: unix.Close,
		alive:   alive,
		base:    time.Now(),
		dests:   make(map[string]*head),
		endps:   make(map[string]*head),
		seed:    seed,
		byTTL:   make(map[classKey]*ttlClass),
	}
}

// MaxSessions returns the session limit in force: Options.MaxSessions,
// with 0 replaced by its share of RLIMIT_NOFILE; negative means no limit.
func (c *Cache) MaxSessions() int { return c.max }

// now returns the cache clock: nanoseconds since c.base, monotonic.
func (c *Cache) now() int64 { return int64(time.Since(c.base)) }

// SaveEndp caches the session fd with its endpoint properties under
// endpLabel for ttl, appending it after the sessions already cached there.
// The cache owns fd from now on, whatever happens: after Close, or when
// MaxSessions is exceeded, a descriptor is closed before SaveEndp returns.
// ttl is used as given (the server clamps it); ttl <= 0 expires at once.
// The strings are copied if kept (see [Cache]).
func (c *Cache) SaveEndp(endpLabel, endpProp string, fd int, ttl time.Duration) {
	c.mu.Lock()
	if c.closed {
		c.evict.Closed++
		c.mu.Unlock()
		c.drop(fd)
		return
	}
	now := c.now()
	slot := c.recentSlot(endpLabel)
	h := c.endps[endpLabel]
	if h == nil {
		if r := &c.recentEndps[slot]; *r == endpLabel {
			endpLabel = *r // share the copy a binding holds
		} else {
			endpLabel = strings.Clone(endpLabel)
		}
		h = c.newHead(endpLabel)
		c.endps[endpLabel] = h
	}
	// An endpoint saved again and again (the session smtp(8) took back,
	// returned) usually comes with the same properties: share the copy
	// kept the last time.
	if p := &c.recentProps[slot]; *p == endpProp {
		endpProp = *p
	} else {
		endpProp = strings.Clone(endpProp)
		*p = endpProp
	}
	e := c.newEntry()
	e.h, e.prop, e.fd, e.created = h, endpProp, fd, now
	h.append(e)
	c.sessions++
	c.schedule(e, ttl, now, true)
	var victims []int
	for c.max > 0 && c.sessions > c.max {
		v := c.oldestSession()
		victims = append(victims, v.fd)
		c.removeSession(v)
		c.freeEntry(v)
		c.evict.Limit++
	}
	c.arm(now)
	c.unlockAndDrop(victims)
}

// FindEndp removes the oldest session cached under endpLabel and returns
// its descriptor and endpoint properties with ok true; the caller owns fd
// from then on. On a miss it returns -1, "", false.
func (c *Cache) FindEndp(endpLabel string) (fd int, endpProp string, ok bool) {
	for {
		c.mu.Lock()
		e := c.takeSession(endpLabel)
		if e == nil {
			c.mu.Unlock()
			return -1, "", false
		}
		fd, endpProp = e.fd, e.prop
		c.freeEntry(e)
		if c.checkOut(fd, endpLabel) {
			return fd, endpProp, true
		}
	}
}

// SaveDest binds destLabel to endpLabel with destination properties
// destProp for ttl. If the identical binding (same endpoint label and
// properties, byte for byte) exists, only its deadline is reset to ttl from
// now, even if that is sooner, and it keeps its place; otherwise the binding
// is appended after the existing ones. The endpoint need not exist. After
// Close it does nothing. The strings are copied if kept (see [Cache]): a
// refreshed binding keeps the copies it has.
func (c *Cache) SaveDest(destLabel, destProp, endpLabel string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := c.now()
	h := c.dests[destLabel]
	if h == nil {
		h = c.newHead(strings.Clone(destLabel))
		c.dests[h.label] = h
	}
	for e := h.first; e != nil; e = e.next {
		if e.endp == endpLabel && e.prop == destProp {
			c.unschedule(e)
			c.schedule(e, ttl, now, false)
			c.recentEndps[c.recentSlot(endpLabel)] = e.endp
			c.arm(now)
			return
		}
	}
	// The endpoint label: the copy its session list holds, when it has
	// one, or the copy another binding left in recentEndps.
	slot := c.recentSlot(endpLabel)
	switch eh := c.endps[endpLabel]; {
	case eh != nil:
		endpLabel = eh.label
	case c.recentEndps[slot] == endpLabel:
		endpLabel = c.recentEndps[slot]
	default:
		endpLabel = strings.Clone(endpLabel)
	}
	e := c.newEntry()
	e.h, e.prop, e.endp, e.fd, e.created = h, strings.Clone(destProp), endpLabel, -1, now
	h.append(e)
	c.schedule(e, ttl, now, false)
	c.recentEndps[slot] = endpLabel
	c.arm(now)
}

// FindDest tries the bindings of destLabel oldest first and, for the first
// whose endpoint has a cached session, removes that endpoint's oldest
// session and returns its descriptor, the binding's destination properties
// and the session's endpoint properties with ok true; the caller owns fd.
// Bindings are never removed by a find. On a miss (no destination, or no
// bound endpoint has a session) it returns -1, "", "", false.
func (c *Cache) FindDest(destLabel string) (fd int, destProp, endpProp string, ok bool) {
	for {
		c.mu.Lock()
		var endpLabel string
		fd = -1
		if h := c.dests[destLabel]; h != nil {
			for b := h.first; b != nil; b = b.next {
				if s := c.takeSession(b.endp); s != nil {
					fd, destProp, endpProp, endpLabel = s.fd, b.prop, s.prop, b.endp
					c.freeEntry(s)
					break
				}
			}
		}
		if fd < 0 {
			c.mu.Unlock()
			return -1, "", "", false
		}
		if c.checkOut(fd, endpLabel) {
			return fd, destProp, endpProp, true
		}
	}
}

// takeSession removes and returns the oldest session of endpLabel, or nil.
// c.mu must be held; the caller frees the returned entry.
func (c *Cache) takeSession(endpLabel string) *entry {
	h := c.endps[endpLabel]
	if h == nil {
		return nil
	}
	e := h.first
	c.removeSession(e)
	return e
}

// checkOut ends a find that took the session fd of endpLabel out of the
// cache: it releases c.mu, which the caller holds, and reports whether fd
// may be handed out. Unless the cache keeps dead sessions, it first checks
// the peer (peekAlive), outside the lock so that the recv(2) does not
// lengthen every find's critical section; a dead session is closed and
// counted, and the caller tries again. A descriptor that is not a socket
// is handed out all the same, as Postfix would, and counted.
func (c *Cache) checkOut(fd int, endpLabel string) bool {
	if c.alive == nil {
		c.mu.Unlock()
		return true
	}
	// Close waits for a descriptor that may turn out dead (see dropping).
	c.dropping.Add(1)
	c.mu.Unlock()
	defer c.dropping.Done()
	switch c.alive(fd) {
	case peerAlive:
		return true
	case peerNotSocket:
		c.nonSockets.Add(1)
		c.log.Warn(fmt.Sprintf("endpoint %s: cached descriptor %d is not a socket", endpLabel, fd))
		return true
	}
	c.drop(fd)
	c.mu.Lock()
	c.evict.Dead++
	c.mu.Unlock()
	return false
}

// NonSockets returns how many cached descriptors that are not sockets
// (pipes, files) finds have handed out since New. The liveness check
// finds them at no extra cost; with KeepDead there is no check, and they
// are not counted.
func (c *Cache) NonSockets() int64 { return c.nonSockets.Load() }

// Size returns the current population (scache_multi_size).
func (c *Cache) Size() Size {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Size{Dests: len(c.dests), Endps: len(c.endps), Sessions: c.sessions}
}

// Evictions returns the eviction counters since New.
func (c *Cache) Evictions() Evictions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evict
}

// Close empties the cache and closes every cached descriptor exactly once.
// When it returns, descriptors that were being closed concurrently by an
// expiry or eviction are closed too. It returns the close errors joined. Afterwards finds miss, SaveDest does
// nothing and SaveEndp closes its descriptor at once. A second Close
// returns nil.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	fds := make([]int, 0, c.sessions)
	for _, h := range c.endps {
		for e := h.first; e != nil; e = e.next {
			fds = append(fds, e.fd)
		}
	}
	c.evict.Closed += int64(len(fds))
	c.dests, c.endps = map[string]*head{}, map[string]*head{}
	c.byTTL, c.classes = map[classKey]*ttlClass{}, nil
	c.sessions = 0
	c.recentEndps = [recentEndps]string{}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.armed = false
	c.mu.Unlock()
	var failed []error
	for _, fd := range fds {
		if err := c.closeFD(fd); err != nil {
			failed = append(failed, fmt.Errorf("scache: close(%d): %w", fd, err))
		}
	}
	c.dropping.Wait()
	return errs.Join(failed...)
}

// unlockAndDrop releases c.mu, which the caller holds, and then drops fds,
// the sessions the caller took out of the cache under it (expired or
// evicted), so that no close(2) lengthens the critical section.
func (c *Cache) unlockAndDrop(fds []int) {
	if fds == nil {
		c.mu.Unlock()
		return
	}
	// Close waits for these descriptors (see dropping).
	c.dropping.Add(1)
	c.mu.Unlock()
	for _, fd := range fds {
		c.drop(fd)
	}
	c.dropping.Done()
}

// drop closes a descriptor the cache gave up, logging a failure the way
// scache_multi_drop_endp does.
func (c *Cache) drop(fd int) {
	if err := c.closeFD(fd); err != nil {
		c.log.Warn(fmt.Sprintf("scache_multi_drop_endp: close(%d): %s", fd, errs.Text(err)),
			"fd", fd, "err", err)
	}
}

// removeSession unlinks a session from its endpoint list (dropping an empty
// head) and from its expiry list. c.mu must be held.
func (c *Cache) removeSession(e *entry) {
	if e.h.remove(e) {
		delete(c.endps, e.h.label)
		c.freeHead(e.h)
	}
	c.sessions--
	c.unschedule(e)
}

// removeBinding unlinks a binding from its destination list (dropping an
// empty head) and from its expiry list. c.mu must be held.
func (c *Cache) removeBinding(e *entry) {
	if e.h.remove(e) {
		delete(c.dests, e.h.label)
		c.freeHead(e.h)
	}
	c.unschedule(e)
}

// oldestSession returns the session saved first, or nil. Each session ttl
// class is in save order, so this looks at one entry per class in use.
// c.mu must be held.
func (c *Cache) oldestSession() *entry {
	var old *entry
	for _, cl := range c.classes {
		if cl.key.sess && (old == nil || cl.first.created < old.created) {
			old = cl.first
		}
	}
	return old
}

// recentEndps is the number of slots of Cache.recentEndps: far more than
// the save_dest/save_endp pairs in flight at once.
const recentEndps = 128

// recentSlot returns the Cache.recentEndps slot of an endpoint label.
func (c *Cache) recentSlot(endpLabel string) uint64 {
	return maphash.String(c.seed, endpLabel) % recentEndps
}
