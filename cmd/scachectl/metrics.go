package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goscache/goscache/scache/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// defaultMetricsListen is where "scachectl metrics" listens without
// -listen: loopback only, since the figures need no authentication.
const defaultMetricsListen = "127.0.0.1:9469"

// defaultMetricsTimeout bounds one scrape's talk with the daemon when
// -timeout is not given: well under Prometheus's default scrape_timeout
// (10s), so that a daemon that does not answer (master(8) throttling the
// service) still yields goscache_up 0 instead of a failed scrape.
const defaultMetricsTimeout = 5 * time.Second

// metricsTimeout, when set (by tests), is told the settings the exporter
// will use.
var metricsTimeout func(e *env)

func metricsCommand() command {
	return command{
		name:     "metrics",
		synopsis: "[-listen ADDR] [-path PATH]",
		summary:  "serve Prometheus metrics, read from the cache on every scrape",
		run:      runMetrics,
	}
}

// runMetrics serves /metrics until the context ends (SIGINT, SIGTERM). It
// keeps no connection to the cache between scrapes: each scrape dials the
// socket and sends one goscache_stats request, so the exporter outlives
// goscache's restarts under master(8) (max_idle, postfix reload) and needs
// nothing opened before goscache's chroot.
func runMetrics(e *env, args []string) error {
	fs := e.flags("metrics", "[-listen ADDR] [-path PATH]")
	listen := fs.String("listen", defaultMetricsListen, "TCP `address` to serve HTTP on (host:port)")
	path := fs.String("path", "/metrics", "URL `path` of the metrics")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if !e.timeoutSet {
		e.timeout = defaultMetricsTimeout
	}
	if metricsTimeout != nil {
		metricsTimeout(e)
	}
	reg := prometheus.NewRegistry()
	col := newCollector(e)
	defer col.close()
	reg.MustRegister(col)
	mux := http.NewServeMux()
	mux.Handle(*path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if *path != "/" {
		mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "scachectl metrics of %s: see %s\n", e.socket, *path)
		})
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	fmt.Fprintf(e.stderr, "scachectl: serving metrics of %s on http://%s%s\n", e.socket, l.Addr(), *path)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-e.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // Serve, below, returns and reports how the exporter ended
	}()
	err = srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return fmt.Errorf("metrics: %w", err)
}

// Metric descriptors. Names follow Prometheus conventions: a goscache_
// prefix, base units (seconds), _total for counters.
var (
	descUp = prometheus.NewDesc("goscache_up",
		"1 when the cache daemon answered on its socket, 0 when it could not be reached (one series, without labels; goscache_server_info says which daemon answered).",
		nil, nil)
	descServerInfo = prometheus.NewDesc("goscache_server_info",
		"1 for the daemon that answered: server is goscache or postfix; extensions is false for a peer without goscache's extension requests (Postfix's scache), which exports nothing else. Absent while goscache_up is 0.",
		[]string{"server", "extensions"}, nil)
	descBuildInfo = prometheus.NewDesc("goscache_build_info",
		"1, labelled with the build of the goscache daemon that answered (\"unknown\" from a goscache that does not report it).",
		[]string{"version", "revision", "goversion"}, nil)
	descExporterBuildInfo = prometheus.NewDesc("goscache_exporter_build_info",
		"1, labelled with the build of this exporter (scachectl).",
		[]string{"version", "revision", "goversion"}, nil)
	descLookups = prometheus.NewDesc("goscache_lookups_total",
		"Cache lookups since the daemon started, by kind (domain: find_dest, address: find_endp) and result (hit, miss).",
		[]string{"kind", "result"}, nil)
	// One metric per population: their sum would mean nothing.
	descCachedDests = prometheus.NewDesc("goscache_cached_destinations",
		"Destination labels (domains, Postfix's \"domains\") cached now.", nil, nil)
	descCachedEndps = prometheus.NewDesc("goscache_cached_endpoints",
		"Endpoint labels (addresses, Postfix's \"addresses\") with cached connections now.", nil, nil)
	descCachedConns = prometheus.NewDesc("goscache_cached_connections",
		"Connections cached now.", nil, nil)
	descPeakDests = prometheus.NewDesc("goscache_cached_destinations_peak",
		"Peak of goscache_cached_destinations since the daemon started, sampled after saves as Postfix's \"max simultaneous\" statistics.", nil, nil)
	descPeakEndps = prometheus.NewDesc("goscache_cached_endpoints_peak",
		"Peak of goscache_cached_endpoints since the daemon started, sampled after saves.", nil, nil)
	descPeakConns = prometheus.NewDesc("goscache_cached_connections_peak",
		"Peak of goscache_cached_connections since the daemon started, sampled after saves.", nil, nil)
	descEvictions = prometheus.NewDesc("goscache_evictions_total",
		"Cached connections closed other than by a lookup, by reason: expired (ttl ran out), limit (-max-sessions), closed (daemon shutdown).",
		[]string{"reason"}, nil)
	descExpiredBindings = prometheus.NewDesc("goscache_expired_bindings_total",
		"Destination-to-endpoint bindings whose ttl ran out.", nil, nil)
	descDead = prometheus.NewDesc("goscache_dead_connections_dropped_total",
		"Cached connections a lookup found closed by the remote server (or talking unasked) and dropped instead of handing them out.", nil, nil)
	descRefused = prometheus.NewDesc("goscache_refused_clients_total",
		"Client connections the daemon refused because the peer's user may not use the cache (SO_PEERCRED check).", nil, nil)
	descNonSockets = prometheus.NewDesc("goscache_non_socket_descriptors_total",
		"Cached descriptors a lookup found were not sockets (a pipe or file saved as a connection).", nil, nil)
	descDuration = prometheus.NewDesc("goscache_request_duration_seconds",
		"Time the daemon spent on each request, by request type, measured by the daemon itself; _count is the number of requests.",
		[]string{"request"}, nil)
	descClients = prometheus.NewDesc("goscache_clients",
		"Client connections to the daemon now (smtp(8), lmtp(8), other scachectl), the exporter's own excluded: the clients of scachectl stats.", nil, nil)
	descStart = prometheus.NewDesc("goscache_start_time_seconds",
		"When the daemon started, Unix time in seconds.", nil, nil)
	descUptime = prometheus.NewDesc("goscache_uptime_seconds",
		"Seconds since the daemon started.", nil, nil)
	descScrapeErrors = prometheus.NewDesc("goscache_scrape_errors_total",
		"Scrapes of this exporter that could not read the daemon's statistics.", nil, nil)
)

// collector reads the daemon's goscache_stats on every Collect. It is safe
// for concurrent use: Collects take turns.
//
// A peer that answers goscache_stats with status=1 is Postfix's own scache,
// which logs "warning: unrecognized request" for each such request. The
// collector does not ask it again: it keeps that connection open and, while
// the peer keeps it open too (the same scache process), reports it without
// a request. When the connection is gone (postfix reload, a switch to
// goscache), the next scrape dials and asks again: one warning per scache
// process, not one per scrape.
type collector struct {
	e      *env
	errors atomic.Uint64

	mu      sync.Mutex
	socket  string    // the socket scraped last
	postfix cacheConn // open connection to a peer without extensions, or nil
}

func newCollector(e *env) *collector { return &collector{e: e} }

// close closes the connection kept to Postfix's scache, if any.
func (c *collector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropPostfix()
}

// Describe sends every descriptor the collector may use.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descServerInfo, descBuildInfo, descExporterBuildInfo, descLookups, descCachedDests, descCachedEndps, descCachedConns,
		descPeakDests, descPeakEndps, descPeakConns, descEvictions,
		descExpiredBindings, descDead, descRefused, descNonSockets, descDuration, descClients, descStart, descUptime, descScrapeErrors} {
		ch <- d
	}
}

// Collect dials the cache, asks for its statistics and sends the metrics.
// A failure never fails the scrape: it exports goscache_up 0, logs the
// reason on stderr and counts it.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	own := ownBuild()
	ch <- prometheus.MustNewConstMetric(descExporterBuildInfo, prometheus.GaugeValue, 1, own.Version, own.Revision, own.GoVersion)
	s, err := c.stats()
	switch {
	case errors.Is(err, client.ErrNoExtensions):
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
		ch <- prometheus.MustNewConstMetric(descServerInfo, prometheus.GaugeValue, 1, "postfix", "false")
	case err != nil:
		c.errors.Add(1)
		fmt.Fprintf(c.e.stderr, "scachectl: metrics: %v\n", err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
	default:
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
		ch <- prometheus.MustNewConstMetric(descServerInfo, prometheus.GaugeValue, 1, s.Server, "true")
		b := s.Build
		ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, orUnknown(b.Version), orUnknown(b.Revision), orUnknown(b.GoVersion))
		collectStats(ch, s)
	}
	ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.CounterValue, float64(c.errors.Load()))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// stats reads the daemon's statistics; it returns ErrNoExtensions without
// a request while the connection to a Postfix scache found earlier stays
// open.
//
// Without -socket the instance's socket is looked up again on every
// scrape: switching the second way (connection_cache_service_name =
// goscache) moves the socket, while Postfix's scache keeps running idle on
// the old one.
func (c *collector) stats() (*statsView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The whole exchange, the lookup and connecting included, within the
	// timeout: a scrape must end before Prometheus gives up on it.
	ctx, cancel := context.WithTimeout(c.e.ctx, c.e.timeout)
	defer cancel()
	e := *c.e
	if c.socket == "" {
		c.socket = e.socket
	}
	if e.socketFromInstance {
		// A failed lookup keeps the last socket found.
		if p, err := e.inst.socket(ctx); err == nil && p != c.socket {
			fmt.Fprintf(e.stderr, "scachectl: metrics: the cache socket is now %s (was %s)\n", p, c.socket)
			c.socket = p
			c.dropPostfix()
		}
	}
	e.socket = c.socket
	if c.postfix != nil {
		if c.postfix.Open() {
			return nil, client.ErrNoExtensions
		}
		c.dropPostfix()
	}
	conn, err := e.connectCtx(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	s, err := conn.Stats()
	if !stop() {
		// The timeout closed the connection: the daemon did not answer,
		// or did not announce itself, in time.
		return nil, socketError(e.socket, fmt.Errorf("goscache_stats: %w", os.ErrDeadlineExceeded))
	}
	if errors.Is(err, client.ErrNoExtensions) {
		c.postfix = conn
		return nil, err
	}
	conn.Close()
	return s, err
}

// dropPostfix closes the connection kept to Postfix's scache, if any; c.mu
// is held.
func (c *collector) dropPostfix() {
	if c.postfix != nil {
		c.postfix.Close()
		c.postfix = nil
	}
}

// collectStats sends the metrics of a goscache_stats reply.
func collectStats(ch chan<- prometheus.Metric, s *statsView) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descLookups, s.Lookups.Domain.Hits, "domain", "hit")
	counter(descLookups, s.Lookups.Domain.Misses, "domain", "miss")
	counter(descLookups, s.Lookups.Address.Hits, "address", "hit")
	counter(descLookups, s.Lookups.Address.Misses, "address", "miss")
	gauge(descCachedDests, float64(s.Cached.Domains))
	gauge(descCachedEndps, float64(s.Cached.Addresses))
	gauge(descCachedConns, float64(s.Cached.Connections))
	gauge(descPeakDests, float64(s.Peak.Domains))
	gauge(descPeakEndps, float64(s.Peak.Addresses))
	gauge(descPeakConns, float64(s.Peak.Connections))
	counter(descEvictions, s.Evictions.Expired, "expired")
	counter(descEvictions, s.Evictions.Limit, "limit")
	counter(descEvictions, s.Evictions.Closed, "closed")
	counter(descExpiredBindings, s.Evictions.ExpiredBindings)
	counter(descDead, s.Evictions.Dead)
	counter(descRefused, s.RefusedClients)
	counter(descNonSockets, s.NonSockets)
	gauge(descClients, float64(s.Clients))
	gauge(descStart, float64(s.Start.UnixNano())/1e9)
	gauge(descUptime, s.Time.Sub(s.Start).Seconds())
	if s.Latency != nil {
		for _, r := range s.Latency.Requests {
			ch <- constHistogram(s.Latency.Bounds, r)
		}
	}
}

// constHistogram turns per-bucket counts into Prometheus's cumulative
// buckets. The daemon copies its counters one by one while requests run,
// so the buckets may add up to a little more than the count: the count is
// raised to match, as Prometheus requires.
func constHistogram(bounds []time.Duration, r requestLatency) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range r.Buckets {
		cum += b
		if i < len(bounds) {
			buckets[bounds[i].Seconds()] = cum
		}
	}
	return prometheus.MustNewConstHistogram(descDuration, max(r.Count, cum), r.Sum.Seconds(), buckets, r.Request)
}
