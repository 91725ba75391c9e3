package server

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
)

func TestStats_dump(t *testing.T) {
	// Local time: scache.Dump formats the interval start in the local zone, like
	// ctime(), so a local time reads back unchanged in any TZ.
	start := time.Date(2025, time.November, 3, 16, 4, 31, 0, time.Local)
	tests := []struct {
		name string
		feed func(s *stats)
		want []string
	}{
		{"nothing", func(*stats) {}, nil},
		{"postfix example", func(s *stats) {
			s.destLookup(true)
			s.destLookup(true)
			s.destLookup(false)
			s.destLookup(true)
			s.endpLookup(false)
			s.endpLookup(false)
			s.savedDest(cache.Size{Dests: 1, Endps: 0, Sessions: 0})
			s.savedEndp(cache.Size{Dests: 1, Endps: 2, Sessions: 2})
		}, []string{
			"statistics: start interval Nov  3 16:04:31",
			"statistics: domain lookup hits=3 miss=1 success=75%",
			"statistics: address lookup hits=0 miss=2 success=0%",
			"statistics: max simultaneous domains=1 addresses=2 connection=2",
		}},
		{"success truncates", func(s *stats) {
			s.endpLookup(true)
			s.endpLookup(true)
			s.endpLookup(false)
		}, []string{
			"statistics: start interval Nov  3 16:04:31",
			"statistics: address lookup hits=2 miss=1 success=66%",
		}},
		{"domains only", func(s *stats) {
			s.destLookup(false)
		}, []string{
			"statistics: start interval Nov  3 16:04:31",
			"statistics: domain lookup hits=0 miss=1 success=0%",
		}},
		{"peaks only", func(s *stats) {
			s.savedEndp(cache.Size{Dests: 7, Endps: 1, Sessions: 1}) // save_endp does not sample dests
		}, []string{
			"statistics: start interval Nov  3 16:04:31",
			"statistics: max simultaneous domains=0 addresses=1 connection=1",
		}},
		{"peaks keep the maximum", func(s *stats) {
			s.savedDest(cache.Size{Dests: 3, Endps: 2, Sessions: 9}) // save_dest does not sample sessions
			s.savedDest(cache.Size{Dests: 1, Endps: 1})
			s.savedEndp(cache.Size{Dests: 1, Endps: 5, Sessions: 4})
			s.savedEndp(cache.Size{Dests: 1, Endps: 1, Sessions: 2})
		}, []string{
			"statistics: start interval Nov  3 16:04:31",
			"statistics: max simultaneous domains=3 addresses=5 connection=4",
		}},
		{"zero sizes count as nothing", func(s *stats) {
			s.savedDest(cache.Size{})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStats(start)
			tt.feed(s)
			if diff := cmp.Diff(tt.want, s.dump(start.Add(time.Minute))); diff != "" {
				t.Errorf("scache.Dump mismatch (-want +got):\n%s", diff)
			}
			if got := s.dump(start.Add(2 * time.Minute)); got != nil {
				t.Errorf("second scache.Dump = %q, want nil (reset)", got)
			}
		})
	}
}

func TestStats_intervalStart(t *testing.T) {
	t0 := time.Date(2025, time.December, 24, 9, 5, 7, 0, time.Local)
	s := newStats(t0)
	s.destLookup(true)
	s.dump(t0.Add(10 * time.Minute))
	s.dump(t0.Add(20 * time.Minute)) // nothing to log, but the interval still restarts
	s.endpLookup(true)
	want := []string{
		"statistics: start interval Dec 24 09:25:07",
		"statistics: address lookup hits=1 miss=0 success=100%",
	}
	if diff := cmp.Diff(want, s.dump(t0.Add(30*time.Minute))); diff != "" {
		t.Errorf("scache.Dump mismatch (-want +got):\n%s", diff)
	}
}

func TestStats_totals(t *testing.T) {
	t0 := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.Local)
	s := newStats(t0)
	s.destLookup(true)
	s.destLookup(false)
	s.endpLookup(false)
	s.savedDest(cache.Size{Dests: 2, Endps: 1})
	s.dump(t0.Add(time.Minute)) // totals survive the interval reset
	s.destLookup(true)
	s.endpLookup(true)
	s.savedEndp(cache.Size{Dests: 1, Endps: 3, Sessions: 4})
	s.savedDest(cache.Size{Dests: 1, Endps: 1})
	want := scache.Totals{
		Start: t0, DestHits: 2, DestMisses: 1, EndpHits: 1, EndpMisses: 1,
		PeakDests: 2, PeakEndps: 3, PeakSessions: 4,
	}
	if diff := cmp.Diff(want, s.totals()); diff != "" {
		t.Errorf("scache.Totals mismatch (-want +got):\n%s", diff)
	}
}
