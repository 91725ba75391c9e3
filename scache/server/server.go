// Package server serves Postfix's connection cache protocol the way
// scache(8) does (scache/scache.c): a [Server] accepts clients on the
// listeners handed to [Server.Serve], one goroutine per client, answers
// the four requests with Postfix's replies and warnings, passes
// descriptors to and from its [cache.Cache], logs the "statistics:" lines,
// and answers goscache's read-only extension requests. The wire
// vocabulary is package scache's.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
	"github.com/goscache/goscache/scache/internal/errs"
)

// Defaults of the Server's configuration fields.
const (
	// DefaultTTLLimit is connection_cache_ttl_limit.
	DefaultTTLLimit = 2 * time.Second
	// DefaultStatusUpdateTime is connection_cache_status_update_time.
	DefaultStatusUpdateTime = 600 * time.Second
	// DefaultIPCTimeout is ipc_timeout.
	DefaultIPCTimeout = 3600 * time.Second
)

// Accept retry delays: the first retry waits acceptDelayMin, each further
// one twice as long, up to acceptDelayMax.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// Options configure a [Server]; the zero value of every field means its
// default. NewServer copies them: changing an Options value afterwards
// changes nothing.
type Options struct {
	// Logger receives Postfix's messages as the message text (warnings at
	// Warn, "statistics: ..." at Info) and per-request traces at Debug.
	// Nil discards everything.
	Logger *slog.Logger
	// TTLLimit caps the ttl of every saved entry
	// (connection_cache_ttl_limit); 0 means DefaultTTLLimit.
	TTLLimit time.Duration
	// StatusUpdateTime is how often the statistics are logged and reset
	// (connection_cache_status_update_time); 0 means
	// DefaultStatusUpdateTime, a negative value turns the periodic log off.
	StatusUpdateTime time.Duration
	// IPCTimeout bounds every read and write inside a request and the wait
	// for a descriptor (ipc_timeout); 0 means DefaultIPCTimeout. There is
	// no deadline while a client sits idle between requests.
	IPCTimeout time.Duration
	// Cache, if not nil, is the cache served, owned by the caller, who
	// closes it after the Server. Nil: the Server creates one, configured
	// by MaxSessions, KeepDead and Logger, and closes it in Shutdown and
	// Close. MaxSessions and KeepDead must be zero when Cache is set.
	Cache *cache.Cache
	// MaxSessions bounds the cache the Server creates, as
	// cache.Options.MaxSessions does: 0 means the share of RLIMIT_NOFILE
	// that [cache.DescriptorBudget] leaves to cached sessions, a negative
	// value means no limit.
	MaxSessions int
	// MaxConns bounds the client connections served at once: beyond it
	// new clients wait in the listen backlog until one leaves (stalled
	// clients still leave after IPCTimeout). 0 means the share of
	// RLIMIT_NOFILE that [cache.DescriptorBudget] gives to clients; a negative
	// value means no limit.
	MaxConns int
	// KeepDead configures the cache the Server creates: true hands out
	// cached connections whose peer has gone, as Postfix's scache does
	// (cache.Options.KeepDead).
	KeepDead bool
	// Busy, if not nil, is called with true when the number of requests in
	// progress goes from 0 to 1 and with false when it drops back to 0
	// (master(8)'s TAKEN and AVAIL). Calls never overlap, alternate, and
	// the last one reports the current state; two transitions of
	// different clients that race each other may be reported as none.
	Busy func(busy bool)
	// ConnCount, if not nil, is called with the number of connected
	// clients whenever it changes. Calls never overlap and come in order.
	ConnCount func(n int)
	// Peers, if not nil, admits only the local users it allows: each
	// accepted connection is checked once, before the announcement, and a
	// refused one is closed unanswered (see [PeerPolicy]). Nil checks
	// nobody; the goscache daemon always sets it.
	Peers *PeerPolicy
	// Build identifies the program serving, for the goscache_stats reply
	// (scachectl version, stats and metrics); an empty GoVersion means
	// runtime.Version().
	Build scache.BuildInfo
	// NoAnnouncement makes the server speak Postfix 3.5's protocol: it
	// writes nothing on a new connection and waits for the first request.
	// Postfix 3.6 added the announcement (protocol=connection_cache_protocol,
	// written on accept, scache.c's post-accept hook) together with the
	// client-side check of it (scache_clnt.c's handshake); 3.5's smtp(8)
	// reads an announcement as the reply to its first request and turns
	// connection caching off. False, the zero value, announces, as Postfix
	// 3.6 and later do. See docs/protocol.md.
	NoAnnouncement bool
}

// Server serves the scache(8) protocol of Postfix's scache/scache.c on the
// listeners handed to Serve, one goroutine per client connection. Create
// it with [New]. A Server must not be copied.
//
// Descriptor ownership: a descriptor received with save_endp belongs to
// the cache from then on; one handed out by a find request is closed by
// the server right after it was sent (or failed to be). Shutdown and Close
// close the cache, and so every cached descriptor, only when the Server
// created it (Options.Cache was nil).
type Server struct {
	opts      Options // with the defaults filled in
	cache     *cache.Cache
	logger    *slog.Logger
	stats     *stats
	latency   latencies // latency.go: per request kind, lock-free
	ownCache  bool
	handlers  map[string]handler
	connID    atomic.Uint64
	tickDone  chan struct{}
	tickStart sync.Once
	slots     chan struct{} // one per client served, MaxConns of them; nil: no limit
	// done is the Server's closed state: it is closed, under mu, when
	// Shutdown or Close begins (see closed).
	done     chan struct{}
	onFull   func()       // test hook: Serve found every slot taken
	refused  atomic.Int64 // connections refused by Peers
	refusals refusalLog

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}

	// hookMu serializes the Busy and ConnCount calls, so that they come
	// in the order of the changes they report; it guards nothing else.
	hookMu sync.Mutex

	// The request path takes no lock that every client shares: the
	// requests in progress are counted atomically.
	busyCount    atomic.Int64
	reportedBusy bool // the last Busy call's argument; guarded by hookMu
	serving      sync.WaitGroup
}

// New returns a Server configured by o. It panics when o sets both Cache
// and one of the options of the cache it would create (MaxSessions,
// KeepDead): those would not be in force.
func New(o Options) *Server {
	if o.Cache != nil && (o.MaxSessions != 0 || o.KeepDead) {
		panic("server: Options.Cache is set: MaxSessions and KeepDead configure only a cache the Server creates")
	}
	s := &Server{opts: o, cache: o.Cache}
	s.logger = o.Logger
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.opts.TTLLimit <= 0 {
		s.opts.TTLLimit = DefaultTTLLimit
	}
	if s.opts.StatusUpdateTime == 0 {
		s.opts.StatusUpdateTime = DefaultStatusUpdateTime
	}
	if s.opts.IPCTimeout <= 0 {
		s.opts.IPCTimeout = DefaultIPCTimeout
	}
	if s.opts.Build.GoVersion == "" {
		s.opts.Build.GoVersion = runtime.Version()
	}
	if s.opts.MaxConns == 0 {
		s.opts.MaxConns, _ = cache.DescriptorBudget(cache.NoFileLimit())
	}
	if s.opts.MaxConns > 0 {
		s.slots = make(chan struct{}, s.opts.MaxConns)
	}
	s.done = make(chan struct{})
	if s.cache == nil {
		s.cache = cache.New(cache.Options{MaxSessions: s.opts.MaxSessions, KeepDead: s.opts.KeepDead, Logger: s.opts.Logger})
		s.ownCache = true
	}
	s.stats = newStats(time.Now())
	s.handlers = coreHandlers()
	addExtHandlers(s.handlers) // ext.go: read-only requests for scachectl
	s.listeners = make(map[*net.Listener]struct{})
	s.conns = make(map[*conn]struct{})
	s.tickDone = make(chan struct{})
	return s
}

// Cache returns the cache the server serves.
func (s *Server) Cache() *cache.Cache { return s.cache }

// LogStatistics logs the "statistics: ..." lines of the current interval
// at Info and starts a new interval, as scache(8) does every
// StatusUpdateTime and on exit. Nothing is logged when all counters are
// zero.
func (s *Server) LogStatistics() {
	for _, line := range s.stats.dump(time.Now()) {
		s.logger.Info(line)
	}
}

// Serve accepts connections on l and serves each on its own goroutine. It
// writes the protocol announcement at once on every new connection, unless
// Options.NoAnnouncement says to speak Postfix 3.5's protocol.
// Accept errors caused by a lack of resources (EMFILE, ENFILE, ENOBUFS,
// ENOMEM) or by an aborted connection are logged and retried after a delay
// of 5ms, doubling up to 1s. Serve always returns a non-nil error and
// closes l: ErrServerClosed after Shutdown or Close, otherwise the accept
// error.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&l, false)
	s.startTicker()

	var delay time.Duration
	for {
		if !s.takeSlot() {
			return ErrServerClosed
		}
		nc, err := l.Accept()
		if err != nil {
			s.releaseSlot()
			if s.closed() {
				return ErrServerClosed
			}
			s.logger.Error("accept connection: " + errs.Text(err))
			if !retryAccept(err) {
				l.Close()
				return err
			}
			if delay == 0 {
				delay = acceptDelayMin
			} else if delay *= 2; delay > acceptDelayMax {
				delay = acceptDelayMax
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		c, err := s.newConn(nc)
		if err != nil {
			s.refuse(nc, err)
			s.releaseSlot()
			continue
		}
		if !s.trackConn(c, true) {
			s.releaseSlot()
			nc.Close()
			return ErrServerClosed
		}
		go func() {
			c.serve()
			s.releaseSlot()
		}()
	}
}

// takeSlot waits until fewer than MaxConns clients are served and counts
// one more. Meanwhile new clients wait in the listen backlog. It reports
// false when the server closes first.
func (s *Server) takeSlot() bool {
	if s.slots == nil {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if s.onFull != nil {
		s.onFull()
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-s.done:
		return false
	}
}

// releaseSlot ends what takeSlot counted.
func (s *Server) releaseSlot() {
	if s.slots != nil {
		<-s.slots
	}
}

// Limits returns the client and session limits in force, the defaults
// derived from RLIMIT_NOFILE filled in (negative: no limit); the session
// limit is the cache's, whoever created it.
func (s *Server) Limits() (maxConns, maxSessions int) {
	return s.opts.MaxConns, s.cache.MaxSessions()
}

// retryAccept reports whether an accept error is worth retrying.
func retryAccept(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO:
		return true
	}
	return false
}

// closed reports whether Shutdown or Close has begun. It takes no lock: a
// non-blocking receive from done.
func (s *Server) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed() {
			return false
		}
		s.listeners[l] = struct{}{}
		s.serving.Add(1)
		return true
	}
	delete(s.listeners, l)
	s.serving.Done()
	return true
}

// trackConn adds or removes a connection and reports the new count.
func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	if add {
		if s.closed() {
			s.mu.Unlock()
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	n := len(s.conns)
	// Take hookMu before releasing mu so that hook calls keep the order of
	// the changes they report.
	s.hookMu.Lock()
	s.mu.Unlock()
	defer s.hookMu.Unlock()
	if s.opts.ConnCount != nil {
		s.opts.ConnCount(n)
	}
	return true
}

// setBusy counts a batch of requests in or out of progress. On a 0->1 or
// 1->0 transition it reports, under hookMu, the state the count has by
// then if it differs from the last one reported.
func (s *Server) setBusy(busy bool) {
	var n int64
	if busy {
		n = s.busyCount.Add(1)
	} else {
		n = s.busyCount.Add(-1)
	}
	if s.opts.Busy == nil || (busy && n != 1) || (!busy && n != 0) {
		return
	}
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	if now := s.busyCount.Load() > 0; now != s.reportedBusy {
		s.reportedBusy = now
		s.opts.Busy(now)
	}
}

func (s *Server) startTicker() {
	s.tickStart.Do(func() {
		if s.opts.StatusUpdateTime < 0 {
			close(s.tickDone)
			return
		}
		go func() {
			defer close(s.tickDone)
			t := time.NewTicker(s.opts.StatusUpdateTime)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					s.LogStatistics()
				case <-s.done:
					return
				}
			}
		}()
	})
}

// beginClose marks the server closed, closes its listeners and stops the
// statistics ticker. It reports false if the server was closed already.
func (s *Server) beginClose() (bool, error) {
	s.mu.Lock()
	if s.closed() {
		s.mu.Unlock()
		return false, nil
	}
	close(s.done)
	var failed []error
	for l := range s.listeners {
		if err := (*l).Close(); err != nil {
			failed = append(failed, err)
		}
	}
	s.mu.Unlock()
	// The ticker goroutine may never have started.
	s.tickStart.Do(func() { close(s.tickDone) })
	<-s.tickDone
	return true, errs.Join(failed...)
}

// Close closes every listener and every client connection at once, then
// the Cache if the Server created it. Requests in progress fail. A second
// call returns ErrServerClosed.
func (s *Server) Close() error {
	first, err := s.beginClose()
	if !first {
		return ErrServerClosed
	}
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.serving.Wait()
	_ = s.waitConns(context.Background(), false) // no deadline: it returns nil once every connection is gone
	return errs.Join(err, s.closeCache())
}

// Shutdown stops the server gracefully, like net/http's: it closes the
// listeners, closes every connection that sits idle between requests, and
// waits until the requests in progress are done and their connections
// closed, or until ctx is done, in which case it closes the remaining
// connections and returns ctx's error. A request is answered once its
// first bytes have been read, and a connection is never read from after
// Shutdown has found it idle: no request is read that is not answered. The Cache is closed last if the
// Server created it. A second call returns ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	first, err := s.beginClose()
	if !first {
		return ErrServerClosed
	}
	s.serving.Wait()
	if werr := s.waitConns(ctx, true); werr != nil {
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		_ = s.waitConns(context.Background(), false) // no deadline: it returns nil once every connection is gone
		err = errs.Join(err, werr)
	}
	return errs.Join(err, s.closeCache())
}

// closeIdle ends the connections that wait for their next request. They
// are not closed from here: a wait that has just taken in the first bytes
// of a request would lose it. Each wait is ended instead (conn.endWait),
// and the connection closes itself unless a request has begun to arrive,
// which it answers first.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			c.endWait()
		}
	}
}

// waitConns polls until no connection is left, like net/http's Shutdown,
// ending the wait of the idle ones at every poll when idle is set
// (closeIdle): a connection that went idle as Shutdown began may have
// missed the closed state, and waits for a request until the next poll
// ends its wait (conn.setIdle).
func (s *Server) waitConns(ctx context.Context, idle bool) error {
	delay := time.Millisecond
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		if idle {
			s.closeIdle()
		}
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if delay *= 2; delay > 100*time.Millisecond {
				delay = 100 * time.Millisecond
			}
			t.Reset(delay)
		}
	}
}

func (s *Server) closeCache() error {
	if !s.ownCache {
		return nil
	}
	return s.cache.Close()
}
