package server

import (
	"fmt"
	"sync"
	"time"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
)

// stats holds the seven per-interval counters of Postfix's scache.c
// (destination and endpoint hits and misses, peak destinations, endpoints
// and sessions) and lifetime totals for debugging tools. The server counts
// lookups and samples peaks after successful saves; [stats.dump] renders
// and resets the interval. Safe for concurrent use. Create it with
// [newStats].
type stats struct {
	mu    sync.Mutex
	start time.Time // interval start (scache_start_time)
	cur   counters
	total scache.Totals
}

// counters are one interval's values, as in scache.c.
type counters struct {
	destHits, destMiss int
	endpHits, endpMiss int
	destPeak, endpPeak int
	sessPeak           int
}

// newStats returns zeroed statistics whose first interval starts at now.
func newStats(now time.Time) *stats {
	return &stats{start: now, total: scache.Totals{Start: now}}
}

// destLookup counts a find_dest outcome: hit (status 0, even if the
// descriptor then fails to transfer) or miss (status 2). BAD requests are
// not counted.
func (s *stats) destLookup(hit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hit {
		s.cur.destHits++
		s.total.DestHits++
	} else {
		s.cur.destMiss++
		s.total.DestMisses++
	}
}

// endpLookup counts a find_endp outcome, like destLookup.
func (s *stats) endpLookup(hit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hit {
		s.cur.endpHits++
		s.total.EndpHits++
	} else {
		s.cur.endpMiss++
		s.total.EndpMisses++
	}
}

// savedDest samples the destination and endpoint peaks after a successful
// save_dest; sz is the cache size just after the save.
func (s *stats) savedDest(sz cache.Size) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.destPeak = max(s.cur.destPeak, sz.Dests)
	s.cur.endpPeak = max(s.cur.endpPeak, sz.Endps)
	s.total.PeakDests = max(s.total.PeakDests, sz.Dests)
	s.total.PeakEndps = max(s.total.PeakEndps, sz.Endps)
}

// savedEndp samples the endpoint and session peaks after a successful
// save_endp; sz is the cache size just after the save.
func (s *stats) savedEndp(sz cache.Size) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.endpPeak = max(s.cur.endpPeak, sz.Endps)
	s.cur.sessPeak = max(s.cur.sessPeak, sz.Sessions)
	s.total.PeakEndps = max(s.total.PeakEndps, sz.Endps)
	s.total.PeakSessions = max(s.total.PeakSessions, sz.Sessions)
}

// statsStampLayout is characters 4-18 of C's ctime(): "Nov  3 16:04:31",
// the day padded with a space.
const statsStampLayout = "Jan _2 15:04:05"

// dump returns the "statistics: ..." lines scache_status_dump logs, in
// order and each only when its counters are non-zero, with the interval
// start in local time; it returns nil when every counter is zero. It then
// resets the counters and starts a new interval at now (also when nothing
// was returned), as Postfix does.
func (s *stats) dump(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cur
	var lines []string
	if c != (counters{}) {
		lines = append(lines, "statistics: start interval "+s.start.Local().Format(statsStampLayout))
	}
	if n := c.destHits + c.destMiss; n > 0 {
		lines = append(lines, fmt.Sprintf("statistics: domain lookup hits=%d miss=%d success=%d%%",
			c.destHits, c.destMiss, c.destHits*100/n))
	}
	if n := c.endpHits + c.endpMiss; n > 0 {
		lines = append(lines, fmt.Sprintf("statistics: address lookup hits=%d miss=%d success=%d%%",
			c.endpHits, c.endpMiss, c.endpHits*100/n))
	}
	if c.destPeak != 0 || c.endpPeak != 0 || c.sessPeak != 0 {
		lines = append(lines, fmt.Sprintf("statistics: max simultaneous domains=%d addresses=%d connection=%d",
			c.destPeak, c.endpPeak, c.sessPeak))
	}
	s.cur = counters{}
	s.start = now
	return lines
}

// totals returns the lifetime figures since newStats.
func (s *stats) totals() scache.Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}
