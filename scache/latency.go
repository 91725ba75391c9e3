package scache

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds of the request latency buckets the
// server keeps, in increasing order; a last, unbounded bucket follows. They
// are fixed so that recording a request is a few comparisons and three
// atomic adds, with no allocation and no lock.
var LatencyBounds = [...]time.Duration{
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

// latencyBuckets is the number of buckets: one per bound and the last one.
const latencyBuckets = len(LatencyBounds) + 1

// RequestKinds are the requests whose latency the server records, in the
// order of [Latency.Requests]: the four standard requests and the two
// extension requests. Unknown requests are not recorded.
var RequestKinds = [...]string{ReqFindDest, ReqFindEndp, ReqSaveDest, ReqSaveEndp, ReqStats, ReqDump}

// requestKind returns the index of req in RequestKinds, or -1.
func requestKind(req string) int {
	for k, r := range RequestKinds {
		if r == req {
			return k
		}
	}
	return -1
}

// histogram is one request kind's latency histogram. Buckets are not
// cumulative: Buckets[i] counts the requests that took at most
// LatencyBounds[i] and more than LatencyBounds[i-1].
type histogram struct {
	count   atomic.Uint64
	sumNano atomic.Uint64
	buckets [latencyBuckets]atomic.Uint64
}

// latencies holds a histogram per request kind. The zero value is ready
// to use and safe for concurrent use.
type latencies [len(RequestKinds)]histogram

// observe records that a request of kind req took d. It does not allocate.
func (l *latencies) observe(req string, d time.Duration) {
	k := requestKind(req)
	if k < 0 {
		return
	}
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h := &l[k]
	h.buckets[i].Add(1)
	h.sumNano.Add(uint64(d))
	h.count.Add(1)
}

// Histogram is a copy of one request kind's latency histogram.
type Histogram struct {
	Count uint64        // requests recorded
	Sum   time.Duration // their total duration
	// Buckets are per-bucket counts (not cumulative), one per entry of
	// LatencyBounds and a last one for longer requests. Nil when the
	// server did not report a histogram.
	Buckets []uint64
}

// Latency is a copy of the request latency histograms, one per entry of
// RequestKinds.
type Latency struct {
	Requests [len(RequestKinds)]Histogram
}

// snapshot copies the histograms. Concurrent requests may make a copy's
// Count differ from the sum of its Buckets by the requests in flight.
func (l *latencies) snapshot() Latency {
	var out Latency
	for k := range l {
		h := &l[k]
		b := make([]uint64, latencyBuckets)
		for i := range b {
			b[i] = h.buckets[i].Load()
		}
		out.Requests[k] = Histogram{Count: h.count.Load(), Sum: time.Duration(h.sumNano.Load()), Buckets: b}
	}
	return out
}

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

// formatBounds is the value of AttrLatencyBounds.
func formatBounds() string {
	var b strings.Builder
	for i, d := range LatencyBounds {
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
