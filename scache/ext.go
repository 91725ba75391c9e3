package scache

// Read-only extension requests for the debug CLI (cmd/scachectl). They are
// goscache's own: Postfix's scache(8) answers them with status=1
// ("unrecognized request"), which is how a client tells the two apart.
// They never change the cache and never pass a descriptor. The wire
// format is in docs/protocol.md.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache/cache"
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
	AttrRefused         = "refused_clients"  // connections refused: by the peer check, or not a Unix-domain socket
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

// Attribute names of the latency histograms in the goscache_stats reply.
const (
	// AttrLatencyBounds is the comma-separated bucket upper bounds in
	// nanoseconds (the last, unbounded bucket has none).
	AttrLatencyBounds = "latency_bounds"
	// AttrLatencyPrefix followed by a request name ("latency_find_dest")
	// is "count,sum_ns,b0,b1,...": that request kind's histogram with
	// per-bucket (not cumulative) counts.
	AttrLatencyPrefix = "latency_"
)

// ServerName is the value of the server attribute in extension replies.
const ServerName = "goscache"

// BuildInfo identifies the build of a server: what the server's
// Options.Build gives it and the goscache_stats reply reports. Its fields
// are free text; an empty one was not reported.
type BuildInfo struct {
	Version   string // the release, e.g. "0.1.0-1"
	Revision  string // the source revision (git commit)
	GoVersion string // the Go release that built it, e.g. "go1.26.0"
}

// ServerStats is the reply to [ReqStats].
type ServerStats struct {
	Time      time.Time       // the server's clock when it answered
	Totals    Totals          // lifetime lookups and peaks; Totals.Start is when counting began
	Size      cache.Size      // the cache population now
	Evictions cache.Evictions // sessions and bindings that left the cache other than by a find
	Clients   int             // connected clients, the asking one included
	// Refused counts connections the server refused unanswered: by its
	// peer check, or because they were not Unix-domain sockets; 0 from a
	// server that does not report it.
	Refused int64
	// NonSockets counts cached descriptors that finds handed out although
	// they were not sockets ([cache.Cache.NonSockets]); 0 from a server
	// that does not report it.
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

// Totals are lifetime figures since the server started counting. Peaks
// are sampled the same way as the interval peaks of the statistics log
// lines: only after successful saves.
type Totals struct {
	Start        time.Time // when counting began
	DestHits     int64
	DestMisses   int64
	EndpHits     int64
	EndpMisses   int64
	PeakDests    int
	PeakEndps    int
	PeakSessions int
}

// Dump is the reply to [ReqDump]: the cache contents at Time.
type Dump struct {
	Time     time.Time
	Snapshot cache.Snapshot
	// Peers maps the descriptor number of each cached session to the remote
	// address of its socket ("127.0.0.1:25", "[::1]:25", "unix:/path",
	// "unix"), or "" when the server could not tell (see [PeerAddr]).
	Peers map[int]string
}

// statsField is one attribute of the goscache_stats reply and the
// ServerStats field it carries: a *time.Time (Unix nanoseconds on the
// wire), *int64, *int or *string. optional fields are missing from older
// servers' replies and then read as 0 or "".
type statsField struct {
	name     string
	optional bool
	field    func(s *ServerStats) any
}

// statsFields is the goscache_stats reply after its status and server
// attributes, in wire order: MarshalAttrs writes it, UnmarshalAttrs reads
// it. The latency histograms follow it.
var statsFields = [...]statsField{
	{AttrTime, false, func(s *ServerStats) any { return &s.Time }},
	{AttrStart, false, func(s *ServerStats) any { return &s.Totals.Start }},
	{AttrClients, false, func(s *ServerStats) any { return &s.Clients }},
	{AttrDestHits, false, func(s *ServerStats) any { return &s.Totals.DestHits }},
	{AttrDestMisses, false, func(s *ServerStats) any { return &s.Totals.DestMisses }},
	{AttrEndpHits, false, func(s *ServerStats) any { return &s.Totals.EndpHits }},
	{AttrEndpMisses, false, func(s *ServerStats) any { return &s.Totals.EndpMisses }},
	{AttrDests, false, func(s *ServerStats) any { return &s.Size.Dests }},
	{AttrEndps, false, func(s *ServerStats) any { return &s.Size.Endps }},
	{AttrSessions, false, func(s *ServerStats) any { return &s.Size.Sessions }},
	{AttrPeakDests, false, func(s *ServerStats) any { return &s.Totals.PeakDests }},
	{AttrPeakEndps, false, func(s *ServerStats) any { return &s.Totals.PeakEndps }},
	{AttrPeakSessions, false, func(s *ServerStats) any { return &s.Totals.PeakSessions }},
	{AttrEvictedExpired, false, func(s *ServerStats) any { return &s.Evictions.Expired }},
	{AttrEvictedLimit, false, func(s *ServerStats) any { return &s.Evictions.Limit }},
	{AttrEvictedClosed, false, func(s *ServerStats) any { return &s.Evictions.Closed }},
	{AttrExpiredBindings, false, func(s *ServerStats) any { return &s.Evictions.ExpiredBindings }},
	{AttrEvictedDead, false, func(s *ServerStats) any { return &s.Evictions.Dead }},
	{AttrRefused, true, func(s *ServerStats) any { return &s.Refused }},
	{AttrNonSockets, true, func(s *ServerStats) any { return &s.NonSockets }},
	{AttrVersion, true, func(s *ServerStats) any { return &s.Build.Version }},
	{AttrRevision, true, func(s *ServerStats) any { return &s.Build.Revision }},
	{AttrGoVersion, true, func(s *ServerStats) any { return &s.Build.GoVersion }},
}

// MarshalAttrs returns the goscache_stats reply carrying s: status 0, the
// server's name, the fields and, when s has them, the latency histograms.
func (s *ServerStats) MarshalAttrs() attr.List {
	l := make(attr.List, 0, 2+len(statsFields)+1+len(requestKinds))
	l = append(l, attr.Int(AttrStatus, int(StatusOK)), attr.Str(AttrServer, ServerName))
	for _, f := range statsFields {
		switch p := f.field(s).(type) {
		case *time.Time:
			l = append(l, attr.Long(f.name, p.UnixNano()))
		case *int64:
			l = append(l, attr.Long(f.name, *p))
		case *int:
			l = append(l, attr.Int(f.name, *p))
		case *string:
			l = append(l, attr.Str(f.name, *p))
		}
	}
	if s.LatencyBounds == nil {
		return l
	}
	l = append(l, attr.Str(AttrLatencyBounds, formatBounds(s.LatencyBounds)))
	for k, h := range s.Latency.Requests {
		l = append(l, attr.Str(AttrLatencyPrefix+requestKinds[k], h.format()))
	}
	return l
}

// UnmarshalAttrs sets s from a goscache_stats reply whose status and
// server attributes the caller has checked. A missing or malformed
// attribute is an error that wraps [ErrProtocol].
func (s *ServerStats) UnmarshalAttrs(l attr.List) error {
	*s = ServerStats{}
	for _, f := range statsFields {
		v, ok := l.Get(f.name)
		if !ok {
			if f.optional {
				continue
			}
			return fmt.Errorf("%w: reply lacks attribute %s", ErrProtocol, f.name)
		}
		if p, ok := f.field(s).(*string); ok {
			*p = v
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: attribute %s=%q is not a number", ErrProtocol, f.name, v)
		}
		switch p := f.field(s).(type) {
		case *time.Time:
			*p = time.Unix(0, n)
		case *int64:
			*p = n
		case *int:
			if int64(int(n)) != n {
				return fmt.Errorf("%w: attribute %s=%d is out of range", ErrProtocol, f.name, n)
			}
			*p = int(n)
		}
	}
	return s.unmarshalLatency(l)
}

// unmarshalLatency fills the latency histograms from a goscache_stats
// reply. They are optional: a goscache from before they were added sends
// none.
func (s *ServerStats) unmarshalLatency(l attr.List) error {
	v, ok := l.Get(AttrLatencyBounds)
	if !ok {
		return nil
	}
	bounds, err := parseBounds(v)
	if err != nil {
		return err
	}
	s.LatencyBounds = bounds
	for k, req := range requestKinds {
		v, ok := l.Get(AttrLatencyPrefix + req)
		if !ok {
			continue
		}
		if s.Latency.Requests[k], err = parseHistogram(v, len(bounds)); err != nil {
			return fmt.Errorf("%s%s: %w", AttrLatencyPrefix, req, err)
		}
	}
	return nil
}

// requestKinds are the requests whose latency the server records, in the
// order of Latency.Requests.
var requestKinds = [...]string{ReqFindDest, ReqFindEndp, ReqSaveDest, ReqSaveEndp, ReqStats, ReqDump}

// NumRequestKinds is the number of request kinds whose latency the server
// records: len([RequestKinds]()).
const NumRequestKinds = len(requestKinds)

// RequestKinds returns the requests whose latency the server records, in
// the order of [Latency.Requests]: the four standard requests and the two
// extension requests. Unknown requests are not recorded.
func RequestKinds() []string { return slices.Clone(requestKinds[:]) }

// RequestKind returns the index of req in [RequestKinds], or -1.
func RequestKind(req string) int {
	for k, r := range requestKinds {
		if r == req {
			return k
		}
	}
	return -1
}

// latencyBounds are the upper bounds of the request latency buckets, in
// increasing order; a last, unbounded bucket follows. They are fixed so
// that recording a request is a few comparisons and three atomic adds,
// with no allocation and no lock.
var latencyBounds = [...]time.Duration{
	10 * time.Microsecond,
	25 * time.Microsecond,
	50 * time.Microsecond,
	100 * time.Microsecond,
	250 * time.Microsecond,
	500 * time.Microsecond,
	time.Millisecond,
	2500 * time.Microsecond,
	5 * time.Millisecond,
	10 * time.Millisecond,
	25 * time.Millisecond,
	100 * time.Millisecond,
	time.Second,
}

// NumLatencyBuckets is the number of latency buckets: one per bound of
// [LatencyBounds] and a last, unbounded one.
const NumLatencyBuckets = len(latencyBounds) + 1

// LatencyBounds returns the upper bounds of the request latency buckets
// goscache's server keeps, in increasing order.
func LatencyBounds() []time.Duration { return slices.Clone(latencyBounds[:]) }

// LatencyBucket returns the index of the latency bucket of a request that
// took d: the first whose bound d does not exceed, or the last.
func LatencyBucket(d time.Duration) int {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	return i
}

// Histogram is a copy of one request kind's latency histogram.
type Histogram struct {
	Count uint64        // requests recorded
	Sum   time.Duration // their total duration
	// Buckets are per-bucket counts (not cumulative), one per bound of
	// LatencyBounds and a last one for longer requests. Nil when the
	// server did not report a histogram.
	Buckets []uint64
}

// Latency is a copy of the request latency histograms, one per entry of
// [RequestKinds].
type Latency struct {
	Requests [NumRequestKinds]Histogram
}

// formatBounds is the value of AttrLatencyBounds.
func formatBounds(bounds []time.Duration) string {
	var b strings.Builder
	for i, d := range bounds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(d), 10))
	}
	return b.String()
}

// format is the value of a latency_<request> attribute.
func (h Histogram) format() string {
	var b []byte
	b = strconv.AppendUint(b, h.Count, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(h.Sum), 10)
	for _, n := range h.Buckets {
		b = append(b, ',')
		b = strconv.AppendUint(b, n, 10)
	}
	return string(b)
}

// parseHistogram reads a latency_<request> value for nb bounds.
func parseHistogram(v string, nb int) (Histogram, error) {
	f := strings.Split(v, ",")
	if len(f) != nb+3 {
		return Histogram{}, fmt.Errorf("%w: latency histogram with %d fields, want %d", ErrProtocol, len(f), nb+3)
	}
	var h Histogram
	var n []uint64
	for _, s := range f {
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Histogram{}, fmt.Errorf("%w: latency histogram: %v", ErrProtocol, err)
		}
		n = append(n, x)
	}
	h.Count, h.Sum, h.Buckets = n[0], time.Duration(n[1]), n[2:]
	return h, nil
}

// parseBounds reads the AttrLatencyBounds value.
func parseBounds(v string) ([]time.Duration, error) {
	var out []time.Duration
	for s := range strings.SplitSeq(v, ",") {
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil || x <= 0 || (len(out) > 0 && time.Duration(x) <= out[len(out)-1]) {
			return nil, fmt.Errorf("%w: bad latency bounds %q", ErrProtocol, v)
		}
		out = append(out, time.Duration(x))
	}
	return out, nil
}
