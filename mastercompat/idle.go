package mastercompat

import (
	"sync"
	"time"
)

// IdleTimer implements max_idle for a multi-server: it runs only while no
// client is connected, is cancelled when the first client connects, and is
// restarted with the full limit when the last client leaves
// (multi_server_accept_local, multi_server_disconnect). It starts running
// when created. Safe for concurrent use.
type IdleTimer struct {
	limit time.Duration
	mu    sync.Mutex
	t     *time.Timer
	once  sync.Once
	done  chan struct{}
}

// NewIdleTimer starts an idle timer of limit. A limit <= 0 never fires.
func NewIdleTimer(limit time.Duration) *IdleTimer {
	it := &IdleTimer{limit: limit, done: make(chan struct{})}
	it.ConnCount(0)
	return it
}

// ConnCount tells the timer how many clients are connected now; it has the
// shape of the scache Server's ConnCount hook. n == 0 (re)starts the full
// limit; n > 0 stops the timer.
func (it *IdleTimer) ConnCount(n int) {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.t != nil {
		it.t.Stop()
		it.t = nil
	}
	if n == 0 && it.limit > 0 {
		it.t = time.AfterFunc(it.limit, func() { it.once.Do(func() { close(it.done) }) })
	}
}

// Done is closed when the timer fires: the process has been idle for the
// whole limit.
func (it *IdleTimer) Done() <-chan struct{} { return it.done }

// Stop stops the timer for good.
func (it *IdleTimer) Stop() {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.t != nil {
		it.t.Stop()
		it.t = nil
	}
	it.limit = 0
}
