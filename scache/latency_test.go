package scache

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLatencies_observe(t *testing.T) {
	last := len(LatencyBounds)
	tests := []struct {
		name   string
		req    string
		d      time.Duration
		kind   int // -1: not recorded
		bucket int
	}{
		{"zero", ReqFindDest, 0, 0, 0},
		{"negative clock step", ReqFindDest, -time.Second, 0, 0},
		{"on the first bound", ReqFindEndp, 10 * time.Microsecond, 1, 0},
		{"just above it", ReqSaveDest, 10*time.Microsecond + 1, 2, 1},
		{"a millisecond", ReqSaveEndp, time.Millisecond, 3, 6},
		{"on the last bound", ReqStats, time.Second, 4, last - 1},
		{"beyond every bound", ReqDump, time.Minute, 5, last},
		{"unknown request", "no_such_request", time.Millisecond, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l latencies
			l.observe(tt.req, tt.d)
			got := l.snapshot()
			var want Latency
			for k := range want.Requests {
				want.Requests[k].Buckets = make([]uint64, latencyBuckets)
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
	if n := testing.AllocsPerRun(100, func() { l.observe(ReqFindDest, 3*time.Millisecond) }); n != 0 {
		t.Errorf("observe allocates %v times per call, want 0", n)
	}
}

func TestHistogram_roundTrip(t *testing.T) {
	bounds, err := parseBounds(formatBounds())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(LatencyBounds[:], bounds); diff != "" {
		t.Errorf("bounds mismatch (-want +got):\n%s", diff)
	}
	h := Histogram{Count: 5, Sum: 1234567, Buckets: make([]uint64, latencyBuckets)}
	h.Buckets[0], h.Buckets[3], h.Buckets[latencyBuckets-1] = 2, 2, 1
	got, err := parseHistogram(h.format(), len(LatencyBounds))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("histogram mismatch (-want +got):\n%s", diff)
	}
}

func TestParseLatency_bad(t *testing.T) {
	for _, v := range []string{"", "x", "10,5", "0,10", "-1", "10,,20"} {
		if _, err := parseBounds(v); !errors.Is(err, ErrProtocol) {
			t.Errorf("parseBounds(%q) = %v, want ErrProtocol", v, err)
		}
	}
	for _, v := range []string{"", "1,2", "1,2,3,4,5,6", "1,2,x,4,5", "1,-2,3,4,5"} {
		if _, err := parseHistogram(v, 2); !errors.Is(err, ErrProtocol) {
			t.Errorf("parseHistogram(%q, 2) = %v, want ErrProtocol", v, err)
		}
	}
}

func BenchmarkLatencies_observe(b *testing.B) {
	var l latencies
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.observe(ReqFindDest, time.Duration(i&0xfffff)*time.Nanosecond)
	}
}
