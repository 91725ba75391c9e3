package server

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/scache"
)

func TestLatencies_observe(t *testing.T) {
	last := len(scache.LatencyBounds())
	tests := []struct {
		name   string
		req    string
		d      time.Duration
		kind   int // -1: not recorded
		bucket int
	}{
		{"zero", scache.ReqFindDest, 0, 0, 0},
		{"negative clock step", scache.ReqFindDest, -time.Second, 0, 0},
		{"on the first bound", scache.ReqFindEndp, 10 * time.Microsecond, 1, 0},
		{"just above it", scache.ReqSaveDest, 10*time.Microsecond + 1, 2, 1},
		{"a millisecond", scache.ReqSaveEndp, time.Millisecond, 3, 6},
		{"on the last bound", scache.ReqStats, time.Second, 4, last - 1},
		{"beyond every bound", scache.ReqDump, time.Minute, 5, last},
		{"unknown request", "no_such_request", time.Millisecond, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l latencies
			l.observe(tt.req, tt.d)
			got := l.snapshot()
			var want scache.Latency
			for k := range want.Requests {
				want.Requests[k].Buckets = make([]uint64, scache.NumLatencyBuckets)
			}
			if tt.kind >= 0 {
				h := &want.Requests[tt.kind]
				h.Count, h.Sum = 1, max(tt.d, 0)
				h.Buckets[tt.bucket] = 1
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLatencies_observeNoAlloc(t *testing.T) {
	var l latencies
	if n := testing.AllocsPerRun(100, func() { l.observe(scache.ReqFindDest, 3*time.Millisecond) }); n != 0 {
		t.Errorf("observe allocates %v times per call, want 0", n)
	}
}

func BenchmarkLatencies_observe(b *testing.B) {
	var l latencies
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.observe(scache.ReqFindDest, time.Duration(i&0xfffff)*time.Nanosecond)
	}
}
