package server

import (
	"sync/atomic"
	"time"

	"github.com/goscache/goscache/scache"
)

// histogram is one request kind's latency histogram. Buckets are not
// cumulative: buckets[i] counts the requests that fell in
// scache.LatencyBucket's bucket i.
type histogram struct {
	count   atomic.Uint64
	sumNano atomic.Uint64
	buckets [scache.NumLatencyBuckets]atomic.Uint64
}

// latencies holds a histogram per request kind (scache.RequestKinds). The
// zero value is ready to use and safe for concurrent use.
type latencies [scache.NumRequestKinds]histogram

// observe records that a request of kind req took d. It does not allocate.
func (l *latencies) observe(req string, d time.Duration) {
	k := scache.RequestKind(req)
	if k < 0 {
		return
	}
	if d < 0 {
		d = 0
	}
	h := &l[k]
	h.buckets[scache.LatencyBucket(d)].Add(1)
	h.sumNano.Add(uint64(d))
	h.count.Add(1)
}

// snapshot copies the histograms. Concurrent requests may make a copy's
// Count differ from the sum of its Buckets by the requests in flight.
func (l *latencies) snapshot() scache.Latency {
	var out scache.Latency
	for k := range l {
		h := &l[k]
		b := make([]uint64, scache.NumLatencyBuckets)
		for i := range b {
			b[i] = h.buckets[i].Load()
		}
		out.Requests[k] = scache.Histogram{Count: h.count.Load(), Sum: time.Duration(h.sumNano.Load()), Buckets: b}
	}
	return out
}
