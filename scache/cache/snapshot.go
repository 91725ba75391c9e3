package cache

import (
	"sort"
	"time"
)

// Snapshot is a deep copy of the cache contents for debugging. Destinations
// and endpoints are sorted by label; bindings and sessions are in list
// order, oldest first (the order in which finds try them).
type Snapshot struct {
	Dests []SnapshotDest
	Endps []SnapshotEndp
}

// SnapshotDest is one destination label and its endpoint bindings.
type SnapshotDest struct {
	Label    string
	Bindings []SnapshotBinding
}

// SnapshotBinding is one destination-to-endpoint binding.
type SnapshotBinding struct {
	EndpLabel string
	DestProp  string
	Created   time.Time // when the binding was first saved
	Expires   time.Time // last save plus its ttl
}

// SnapshotEndp is one endpoint label and its cached sessions.
type SnapshotEndp struct {
	Label    string
	Sessions []SnapshotSession
}

// SnapshotSession is one cached session. FD is the cache's descriptor
// number; a snapshot never touches the descriptor itself.
type SnapshotSession struct {
	FD       int
	EndpProp string
	Created  time.Time
	Expires  time.Time
}

// Snapshot returns a deep copy of the cache contents. It costs O(n log n)
// and holds the cache lock meanwhile: it is meant for debugging tools.
func (c *Cache) Snapshot() Snapshot {
	s := c.snapshot()
	sort.Slice(s.Dests, func(i, j int) bool { return s.Dests[i].Label < s.Dests[j].Label })
	sort.Slice(s.Endps, func(i, j int) bool { return s.Endps[i].Label < s.Endps[j].Label })
	return s
}

// snapshot copies the cache under c.mu, unsorted, so the lock is held for
// a copy only.
func (c *Cache) snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := func(t int64) time.Time { return c.base.Add(time.Duration(t)) }
	var s Snapshot
	for _, h := range c.dests {
		d := SnapshotDest{Label: h.label}
		for e := h.first; e != nil; e = e.next {
			d.Bindings = append(d.Bindings, SnapshotBinding{
				EndpLabel: e.endp, DestProp: e.prop, Created: at(e.created), Expires: at(e.expires),
			})
		}
		s.Dests = append(s.Dests, d)
	}
	for _, h := range c.endps {
		p := SnapshotEndp{Label: h.label}
		for e := h.first; e != nil; e = e.next {
			p.Sessions = append(p.Sessions, SnapshotSession{
				FD: e.fd, EndpProp: e.prop, Created: at(e.created), Expires: at(e.expires),
			})
		}
		s.Endps = append(s.Endps, p)
	}
	return s
}
