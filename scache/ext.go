package scache

// Read-only extension requests for the debug CLI (cmd/scachectl). They are
// goscache's own: Postfix's scache(8) answers them with status=1
// ("unrecognized request"), which is how a client tells the two apart.
// They never change the cache, never pass a descriptor, and copy what they
// report under the cache lock before encoding it outside the lock, so a
// slow reader stalls only its own connection. The wire format is in
// docs/protocol.md.

import (
	"errors"
	"time"

	"github.com/goscache/goscache/attr"
)

// Extension request names.
const (
	ReqStats = "goscache_stats" // lifetime counters, cache size, evictions, clients
	ReqDump  = "goscache_dump"  // every binding and every cached session
)

// Attribute names of the extension replies.
const (
	AttrServer          = "server"           // "goscache"
	AttrTime            = "time"             // the server's clock, Unix nanoseconds
	AttrStart           = "start"            // when the server started counting, Unix nanoseconds
	AttrClients         = "clients"          // connected clients, this one included
	AttrDestHits        = "dest_hits"        // find_dest hits since start
	AttrDestMisses      = "dest_misses"      // find_dest misses since start
	AttrEndpHits        = "endp_hits"        // find_endp hits since start
	AttrEndpMisses      = "endp_misses"      // find_endp misses since start
	AttrDests           = "dests"            // destination labels now
	AttrEndps           = "endps"            // endpoint labels with sessions now
	AttrSessions        = "sessions"         // cached sessions now
	AttrPeakDests       = "peak_dests"       // peak destinations since start, sampled after saves
	AttrPeakEndps       = "peak_endps"       // peak endpoints since start, sampled after saves
	AttrPeakSessions    = "peak_sessions"    // peak sessions since start, sampled after saves
	AttrEvictedExpired  = "evicted_expired"  // sessions closed when their ttl ran out
	AttrEvictedLimit    = "evicted_limit"    // sessions closed to respect MaxSessions
	AttrEvictedClosed   = "evicted_closed"   // sessions closed at shutdown
	AttrExpiredBindings = "expired_bindings" // destination bindings whose ttl ran out
	AttrEvictedDead     = "evicted_dead"     // sessions a find found closed or talking, and dropped
	AttrRefused         = "refused_clients"  // connections refused by the peer check (Server.Peers)
	AttrNonSockets      = "non_sockets"      // cached descriptors handed out that were not sockets
	AttrBindings        = "bindings"         // dump: number of binding records that follow
	AttrDestination     = "destination"      // dump: destination label of a binding
	AttrEndpoint        = "endpoint"         // dump: endpoint label of a binding or session
	AttrCreated         = "created"          // dump: Unix nanoseconds
	AttrExpires         = "expires"          // dump: Unix nanoseconds
	AttrFD              = "fd"               // dump: the server's descriptor number
	AttrPeer            = "peer"             // dump: remote address of a session's socket, or ""
	AttrVersion         = "version"          // stats: the server's version ([BuildInfo])
	AttrRevision        = "revision"         // stats: the source revision it was built from
	AttrGoVersion       = "go_version"       // stats: the Go release that built it
)

// ServerName is the value of the server attribute in extension replies.
const ServerName = "goscache"

// BuildInfo identifies the build of a server: what [Options.Build] gives
// the Server and the goscache_stats reply reports. Its fields are free
// text; an empty one was not reported.
type BuildInfo struct {
	Version   string // the release, e.g. "0.1.0-1"
	Revision  string // the source revision (git commit)
	GoVersion string // the Go release that built it, e.g. "go1.26.0"
}

// ErrNoExtensions means the server answered an extension request with
// status 1, as Postfix's scache does for every request it does not know.
var ErrNoExtensions = errors.New("scache: extension request not recognized (the server is not goscache)")

// ServerStats is the reply to [ReqStats].
type ServerStats struct {
	Time      time.Time // the server's clock when it answered
	Totals    Totals    // lifetime lookups and peaks; Totals.Start is when counting began
	Size      Size      // the cache population now
	Evictions Evictions // sessions and bindings that left the cache other than by a find
	Clients   int       // connected clients, the asking one included
	// Refused counts connections the peer check refused ([Server.Refused]);
	// 0 from a server that does not report it.
	Refused int64
	// NonSockets counts cached descriptors that finds handed out although
	// they were not sockets ([Cache.NonSockets]); 0 from a server that does
	// not report it.
	NonSockets int64
	// LatencyBounds are the server's latency bucket bounds, nil when it
	// reported no histograms (a goscache from before they were added).
	LatencyBounds []time.Duration
	// Latency holds the request latency histograms (see [RequestKinds]);
	// their Buckets are nil when LatencyBounds is.
	Latency Latency
	// Build is the server's build; its fields are empty from a goscache
	// that does not report them (one from before they were added).
	Build BuildInfo
}

// Dump is the reply to [ReqDump]: the cache contents at Time.
type Dump struct {
	Time     time.Time
	Snapshot Snapshot
	// Peers maps the descriptor number of each cached session to the remote
	// address of its socket ("127.0.0.1:25", "[::1]:25", "unix:/path",
	// "unix"), or "" when the server could not tell (see [PeerAddr]).
	Peers map[int]string
}

// addExtHandlers adds the extension requests to a dispatch table.
func addExtHandlers(m map[string]handler) {
	m[ReqStats] = (*conn).extStats
	m[ReqDump] = (*conn).extDump
}

// extRequest reads the rest of an extension request, which has no
// parameters. Like Postfix's strict scans, an unexpected extra attribute
// is logged and tolerated. It reports false, after a status=1 reply, when
// the record could not be read.
func (c *conn) extRequest(req string) bool {
	if _, err := c.scan(attr.FlagStrict); err != nil {
		c.badRequest(req, replyStatusBad, err)
		return false
	}
	return true
}

func (c *conn) extStats() {
	if !c.extRequest(ReqStats) {
		return
	}
	s := c.srv
	t := s.stats.totals()
	sz := s.cache.Size()
	ev := s.cache.Evictions()
	s.mu.Lock()
	clients := len(s.conns)
	s.mu.Unlock()
	l := attr.List{
		attr.Int(AttrStatus, StatusOK),
		attr.Str(AttrServer, ServerName),
		attr.Long(AttrTime, time.Now().UnixNano()),
		attr.Long(AttrStart, t.Start.UnixNano()),
		attr.Int(AttrClients, clients),
		attr.Long(AttrDestHits, t.DestHits),
		attr.Long(AttrDestMisses, t.DestMisses),
		attr.Long(AttrEndpHits, t.EndpHits),
		attr.Long(AttrEndpMisses, t.EndpMisses),
		attr.Int(AttrDests, sz.Dests),
		attr.Int(AttrEndps, sz.Endps),
		attr.Int(AttrSessions, sz.Sessions),
		attr.Int(AttrPeakDests, t.PeakDests),
		attr.Int(AttrPeakEndps, t.PeakEndps),
		attr.Int(AttrPeakSessions, t.PeakSessions),
		attr.Long(AttrEvictedExpired, ev.Expired),
		attr.Long(AttrEvictedLimit, ev.Limit),
		attr.Long(AttrEvictedClosed, ev.Closed),
		attr.Long(AttrExpiredBindings, ev.ExpiredBindings),
		attr.Long(AttrEvictedDead, ev.Dead),
		attr.Long(AttrRefused, s.refused.Load()),
		attr.Long(AttrNonSockets, s.cache.NonSockets()),
		attr.Str(AttrVersion, s.opts.Build.Version),
		attr.Str(AttrRevision, s.opts.Build.Revision),
		attr.Str(AttrGoVersion, s.opts.Build.GoVersion),
	}
	lat := s.latency.snapshot()
	l = append(l, attr.Str(AttrLatencyBounds, formatBounds()))
	for k, h := range lat.Requests {
		l = append(l, attr.Str(AttrLatencyPrefix+RequestKinds[k], h.format()))
	}
	c.reply(l)
}

// extDump answers with a header record, one record per destination
// binding and one per cached session. The snapshot is a copy taken under
// the cache lock; the peer addresses are looked up and the records written
// after the lock is released.
func (c *conn) extDump() {
	if !c.extRequest(ReqDump) {
		return
	}
	snap := c.srv.cache.Snapshot()
	now := time.Now()
	bindings, sessions := 0, 0
	for _, d := range snap.Dests {
		bindings += len(d.Bindings)
	}
	for _, e := range snap.Endps {
		sessions += len(e.Sessions)
	}
	c.dropRest()
	var buf []byte
	buf = attr.Append(buf, attr.List{
		attr.Int(AttrStatus, StatusOK),
		attr.Str(AttrServer, ServerName),
		attr.Long(AttrTime, now.UnixNano()),
		attr.Int(AttrBindings, bindings),
		attr.Int(AttrSessions, sessions),
	})
	for _, d := range snap.Dests {
		for _, b := range d.Bindings {
			buf = attr.Append(buf, attr.List{
				attr.Str(AttrDestination, d.Label),
				attr.Str(AttrEndpoint, b.EndpLabel),
				attr.Str(AttrProp, b.DestProp),
				attr.Long(AttrCreated, b.Created.UnixNano()),
				attr.Long(AttrExpires, b.Expires.UnixNano()),
			})
			if !c.extWrite(&buf) {
				return
			}
		}
	}
	for _, e := range snap.Endps {
		for _, s := range e.Sessions {
			buf = attr.Append(buf, attr.List{
				attr.Str(AttrEndpoint, e.Label),
				attr.Int(AttrFD, s.FD),
				attr.Str(AttrProp, s.EndpProp),
				attr.Long(AttrCreated, s.Created.UnixNano()),
				attr.Long(AttrExpires, s.Expires.UnixNano()),
				attr.Str(AttrPeer, PeerAddr(s.FD)),
			})
			if !c.extWrite(&buf) {
				return
			}
		}
	}
	if len(buf) > 0 {
		if _, err := c.bw.Write(buf); err != nil {
			c.broken = true
			return
		}
	}
	if err := c.bw.Flush(); err != nil {
		c.log.Debug("write reply", "err", err)
		c.broken = true
	}
}

// extWrite hands the records gathered in buf to the connection's writer
// once there are enough of them, and reports false after a write error.
func (c *conn) extWrite(buf *[]byte) bool {
	if len(*buf) < 32<<10 {
		return true
	}
	_, err := c.bw.Write(*buf)
	*buf = (*buf)[:0]
	if err != nil {
		c.log.Debug("write reply", "err", err)
		c.broken = true
		return false
	}
	return true
}
