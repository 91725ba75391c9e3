package mastercompat

import (
	"sync"
	"time"
)

// Watchdog is daemon_timeout's watchdog (util/watchdog.c): unless Kick is
// called at least once per limit, it calls expire, which is expected to log
// "fatal: watchdog timeout" and exit. Postfix restarts its watchdog on
// every pass of the event loop; a Go daemon kicks it from whatever proves
// it is not wedged (for scache: taking the cache lock). Safe for concurrent
// use.
type Watchdog struct {
	limit time.Duration
	mu    sync.Mutex
	t     *time.Timer
}

// NewWatchdog starts a watchdog. A limit <= 0 disables it.
func NewWatchdog(limit time.Duration, expire func()) *Watchdog {
	w := &Watchdog{limit: limit}
	if limit > 0 {
		w.t = time.AfterFunc(limit, expire)
	}
	return w
}

// Kick restarts the countdown.
func (w *Watchdog) Kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Reset(w.limit)
	}
}

// Stop disarms the watchdog.
func (w *Watchdog) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Stop()
		w.t = nil
	}
}
