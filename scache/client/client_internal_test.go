package client

import (
	"math"
	"testing"
	"time"
)

// TestWireSeconds checks how a Client's ttl becomes the protocol's whole
// seconds.
func TestWireSeconds(t *testing.T) {
	tests := []struct {
		ttl  time.Duration
		want int
	}{
		{2 * time.Second, 2},
		{0, 0},
		{time.Millisecond, 1},
		{1500 * time.Millisecond, 2},
		{time.Hour, 3600},
		{-time.Second, -1}, // sent as it is; the server judges it
		{-1500 * time.Millisecond, -1},
		{math.MaxInt64, math.MaxInt32},
		{math.MinInt64, math.MinInt32},
	}
	for _, tt := range tests {
		if got := wireSeconds(tt.ttl); got != tt.want {
			t.Errorf("wireSeconds(%v) = %d, want %d", tt.ttl, got, tt.want)
		}
	}
}
