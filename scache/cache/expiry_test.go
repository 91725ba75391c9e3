package cache

import (
	"fmt"
	"testing"
	"time"
)

// TestCache_expiryBatched checks that deadlines close together expire in
// batches: the timer runs at most once per expirySlack while the next
// deadline is ahead, however many entries fall due in between, and every
// entry still expires.
func TestCache_expiryBatched(t *testing.T) {
	c := New(Options{})
	defer c.Close()
	const n = 60
	const ttl = 200 * time.Millisecond
	start := time.Now()
	for i := range n {
		c.SaveDest(fmt.Sprintf("dest%d", i), "", "endp", ttl)
		time.Sleep(time.Millisecond) // deadlines about 1 ms apart
	}
	span := time.Since(start)
	for deadline := time.Now().Add(10 * time.Second); c.Size().Dests > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d destinations left after 10 s", c.Size().Dests)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	runs := c.expireRuns
	c.mu.Unlock()
	// The saves' deadlines span about span; the first run may come
	// early (nothing due yet) and the last one late.
	if limit := int(span/expirySlack) + 3; runs > limit {
		t.Errorf("expire ran %d times for %d deadlines over %v, want at most %d", runs, n, span, limit)
	}
	if got := c.Evictions().ExpiredBindings; got != n {
		t.Errorf("ExpiredBindings = %d, want %d", got, n)
	}
}
