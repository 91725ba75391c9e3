package scache

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache/cache"
)

func TestHistogram_roundTrip(t *testing.T) {
	bounds, err := parseBounds(formatBounds(LatencyBounds()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(LatencyBounds(), bounds); diff != "" {
		t.Errorf("bounds mismatch (-want +got):\n%s", diff)
	}
	h := Histogram{Count: 5, Sum: 1234567, Buckets: make([]uint64, NumLatencyBuckets)}
	h.Buckets[0], h.Buckets[3], h.Buckets[NumLatencyBuckets-1] = 2, 2, 1
	got, err := parseHistogram(h.format(), len(latencyBounds))
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

// TestServerStats_roundTrip: what MarshalAttrs writes, UnmarshalAttrs
// reads back, every field of the table included.
func TestServerStats_roundTrip(t *testing.T) {
	full := ServerStats{
		Time: time.Unix(0, 2e18),
		Totals: Totals{Start: time.Unix(0, 1e18), DestHits: 4, DestMisses: 5, EndpHits: 6, EndpMisses: 7,
			PeakDests: 1, PeakEndps: 2, PeakSessions: 3},
		Size:          cache.Size{Dests: 1, Endps: 2, Sessions: 3},
		Evictions:     cache.Evictions{Expired: 8, Limit: 9, Closed: 10, ExpiredBindings: 11, Dead: 12},
		Clients:       13,
		Refused:       14,
		NonSockets:    15,
		LatencyBounds: LatencyBounds(),
		Build:         BuildInfo{Version: "1.2.3-1", Revision: "abc", GoVersion: "go1.26.0"},
	}
	for k := range full.Latency.Requests {
		b := make([]uint64, NumLatencyBuckets)
		b[k] = uint64(k + 1)
		full.Latency.Requests[k] = Histogram{Count: uint64(k + 1), Sum: time.Duration(k + 100), Buckets: b}
	}
	noLatency := full
	noLatency.LatencyBounds, noLatency.Latency = nil, Latency{}
	for _, tt := range []struct {
		name string
		s    ServerStats
	}{{"everything", full}, {"no histograms", noLatency}, {"zero", ServerStats{Time: time.Unix(0, 0), Totals: Totals{Start: time.Unix(0, 0)}}}} {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.s.MarshalAttrs()
			if l[0].Name != AttrStatus || l[0].Value != "0" || l[1].Name != AttrServer || l[1].Value != ServerName {
				t.Fatalf("reply starts %v, want status=0, server=goscache", l[:2])
			}
			var got ServerStats
			if err := got.UnmarshalAttrs(l); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.s, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServerStats_unmarshalBad: a reply without a required attribute, or
// with a malformed one, is a protocol error.
func TestServerStats_unmarshalBad(t *testing.T) {
	good := (&ServerStats{}).MarshalAttrs()
	without := func(name string) attr.List {
		var l attr.List
		for _, a := range good {
			if a.Name != name {
				l = append(l, a)
			}
		}
		return l
	}
	replace := func(name, v string) attr.List {
		l := append(attr.List{}, good...)
		for i := range l {
			if l[i].Name == name {
				l[i].Value = v
			}
		}
		return l
	}
	for _, tt := range []struct {
		name string
		l    attr.List
	}{
		{"no time", without(AttrTime)},
		{"no sessions", without(AttrSessions)},
		{"clients not a number", replace(AttrClients, "x")},
		{"peak out of int range", replace(AttrPeakSessions, "99999999999999999999")},
		{"bad bounds", append(append(attr.List{}, good...), attr.Str(AttrLatencyBounds, "5,1"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s ServerStats
			if err := s.UnmarshalAttrs(tt.l); !errors.Is(err, ErrProtocol) {
				t.Errorf("UnmarshalAttrs = %v, want ErrProtocol", err)
			}
		})
	}
}
