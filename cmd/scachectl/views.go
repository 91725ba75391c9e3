package main

import (
	"time"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
)

// cacheConn is one connection to the cache, as the commands use it. The
// standard requests work with any scache; Stats and Dump return an error
// matching client.ErrNoExtensions when the peer answers them with status 1.
type cacheConn interface {
	Stats() (*statsView, error)
	Dump() (*dumpView, error)
	FindDest(label string) (client.Result, error)
	FindEndp(label string) (client.Result, error)
	SaveEndp(label, prop string, fd int, ttl time.Duration) (scache.Status, error)
	SaveDest(destLabel, destProp, endpLabel string, ttl time.Duration) (scache.Status, error)
	// Open reports whether the peer still holds the connection open
	// (without reading from it): a connection to the same process.
	Open() bool
	Close() error
}

// statsView is what "scachectl stats" shows; its JSON form is documented in
// docs/protocol.md.
type statsView struct {
	Server        string    `json:"server"`
	Build         buildView `json:"build"` // the daemon's; empty fields from a goscache that does not report them
	Socket        string    `json:"socket"`
	Time          time.Time `json:"time"`
	Start         time.Time `json:"start"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Clients counts the daemon's client connections now, the asking
	// scachectl's own not included (smtp(8), lmtp(8), other scachectl):
	// the same number as the exporter's goscache_clients.
	Clients   int           `json:"clients"`
	Lookups   lookupsView   `json:"lookups"`
	Cached    sizeView      `json:"cached"`
	Peak      sizeView      `json:"peak"`
	Evictions evictionsView `json:"evictions"`
	// Latency holds the request latency histograms for "scachectl metrics";
	// nil when the server reported none (a goscache from before they were
	// added). Not part of the JSON form.
	Latency *latencyView `json:"-"`
	// Counters for "scachectl metrics" only (0 from a goscache that does
	// not report them): clients the peer check refused, and cached
	// descriptors a find found were not sockets.
	RefusedClients int64 `json:"-"`
	NonSockets     int64 `json:"-"`
}

// latencyView is the server's request latency histograms.
type latencyView struct {
	Bounds   []time.Duration // bucket upper bounds; a last, unbounded bucket follows
	Requests []requestLatency
}

// requestLatency is one request kind's histogram; Buckets are per-bucket
// counts (not cumulative), len(Bounds)+1 of them.
type requestLatency struct {
	Request string
	Count   uint64
	Sum     time.Duration
	Buckets []uint64
}

// lookupsView holds the hit and miss counters since the server started,
// named as in Postfix's "statistics:" lines.
type lookupsView struct {
	Domain  lookupView `json:"domain"`
	Address lookupView `json:"address"`
}

type lookupView struct {
	Hits   int64 `json:"hits"`
	Misses int64 `json:"misses"`
}

// success is hits*100/(hits+misses) truncated, as Postfix prints it, or -1
// without lookups.
func (l lookupView) success() int64 {
	if l.Hits+l.Misses == 0 {
		return -1
	}
	return l.Hits * 100 / (l.Hits + l.Misses)
}

// sizeView counts destinations (domains), endpoints (addresses) and
// sessions (connections), in the words of Postfix's statistics lines.
type sizeView struct {
	Domains     int `json:"domains"`
	Addresses   int `json:"addresses"`
	Connections int `json:"connections"`
}

type evictionsView struct {
	Expired         int64 `json:"expired"`
	Limit           int64 `json:"limit"`
	Closed          int64 `json:"closed"`
	ExpiredBindings int64 `json:"expired_bindings"`
	Dead            int64 `json:"dead"`
}

// dumpView is what "scachectl dump" shows.
type dumpView struct {
	Server       string     `json:"server"`
	Socket       string     `json:"socket"`
	Time         time.Time  `json:"time"`
	Destinations []destView `json:"destinations"`
	Endpoints    []endpView `json:"endpoints"`
}

type destView struct {
	Label    string        `json:"label"`
	Bindings []bindingView `json:"bindings"`
}

type bindingView struct {
	Endpoint    string    `json:"endpoint"`
	Property    string    `json:"property"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	AgeSeconds  float64   `json:"age_seconds"`
	TTLSeconds  float64   `json:"ttl_seconds"`
	Connections int       `json:"connections"` // sessions cached under Endpoint
}

type endpView struct {
	Label       string     `json:"label"`
	Connections []connView `json:"connections"`
}

type connView struct {
	FD         int       `json:"fd"`
	Peer       string    `json:"peer"`
	Property   string    `json:"property"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	AgeSeconds float64   `json:"age_seconds"`
	TTLSeconds float64   `json:"ttl_seconds"`
}

// fill computes the derived fields: ages and ttls relative to d.Time, and
// the number of connections behind each binding.
func (d *dumpView) fill() {
	n := make(map[string]int, len(d.Endpoints))
	for i := range d.Endpoints {
		p := &d.Endpoints[i]
		n[p.Label] = len(p.Connections)
		for j := range p.Connections {
			c := &p.Connections[j]
			c.AgeSeconds = seconds(d.Time.Sub(c.Created))
			c.TTLSeconds = seconds(c.Expires.Sub(d.Time))
		}
	}
	for i := range d.Destinations {
		for j := range d.Destinations[i].Bindings {
			b := &d.Destinations[i].Bindings[j]
			b.AgeSeconds = seconds(d.Time.Sub(b.Created))
			b.TTLSeconds = seconds(b.Expires.Sub(d.Time))
			b.Connections = n[b.Endpoint]
		}
	}
}
