package server

import (
	"errors"
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

func TestPeerPolicy_allows(t *testing.T) {
	const euid = 1000
	groups := func(g ...int) func() ([]int, error) { return func() ([]int, error) { return g, nil } }
	failing := func() ([]int, error) { return nil, errors.New("no SO_PEERGROUPS") }
	tests := []struct {
		name   string
		policy PeerPolicy
		cred   credentials
		want   bool
	}{
		{"root", PeerPolicy{}, credentials{UID: 0, GID: 0}, true},
		{"own user", PeerPolicy{}, credentials{UID: euid, GID: 50}, true},
		{"stranger", PeerPolicy{}, credentials{UID: 65534, GID: 65534, Groups: groups(65534)}, false},
		{"mail_owner", PeerPolicy{UIDs: []int{107}}, credentials{UID: 107, GID: 114}, true},
		{"other than mail_owner", PeerPolicy{UIDs: []int{107}}, credentials{UID: 108, GID: 114}, false},
		{"primary group", PeerPolicy{GIDs: []int{4242}}, credentials{UID: 2000, GID: 4242}, true},
		{"supplementary group", PeerPolicy{GIDs: []int{4242}}, credentials{UID: 2000, GID: 100, Groups: groups(100, 4242)}, true},
		{"not in the group", PeerPolicy{GIDs: []int{4242}}, credentials{UID: 2000, GID: 100, Groups: groups(100, 24)}, false},
		{"groups unknown", PeerPolicy{GIDs: []int{4242}}, credentials{UID: 2000, GID: 100, Groups: failing}, false},
		{"no group lookup without groups", PeerPolicy{}, credentials{UID: 2000, GID: 100, Groups: failing}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.allows(tt.cred, euid); got != tt.want {
				t.Errorf("allows(%+v) = %v, want %v", tt.cred, got, tt.want)
			}
		})
	}
}
