package server

import (
	"testing"
	"time"
)

func TestRefusalLog(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	const every = time.Minute
	steps := []struct {
		uid           int
		at            time.Duration
		log           bool
		suppressedOut int
	}{
		{65534, 0, true, 0},
		{65534, time.Second, false, 0},
		{1000, 2 * time.Second, true, 0}, // another user has its own interval
		{65534, 59 * time.Second, false, 0},
		{65534, time.Minute, true, 2}, // the two in between are reported
		{65534, time.Minute + time.Second, false, 0},
		{1000, 3 * time.Minute, true, 0},
	}
	var r refusalLog
	for i, s := range steps {
		log, suppressed := r.note(s.uid, t0.Add(s.at), every)
		if log != s.log || suppressed != s.suppressedOut {
			t.Errorf("step %d (uid %d at %v): note = %v, %d; want %v, %d", i, s.uid, s.at, log, suppressed, s.log, s.suppressedOut)
		}
	}
}

func TestRefusalLog_bounded(t *testing.T) {
	var r refusalLog
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for uid := range maxRefusalEntries {
		r.note(uid, t0, time.Minute)
	}
	// An interval later, a new user makes room by forgetting the old ones.
	if log, _ := r.note(maxRefusalEntries, t0.Add(time.Minute), time.Minute); !log {
		t.Fatal("new user not logged")
	}
	if n := len(r.users); n != 1 {
		t.Errorf("%d users remembered, want 1", n)
	}
}
