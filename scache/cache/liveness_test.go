package cache

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// liveSession returns a cached-side socket and its peer: what smtp(8)
// hands over, and the remote server's end of the connection.
func liveSession(t *testing.T) (cached, peer int) {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	t.Cleanup(func() { unix.Close(p[1]) })
	return p[0], p[1]
}

// TestCache_deadSessions checks that a find drops cached connections whose
// peer closed them or spoke unasked, hands out the next live one, and
// closes every dropped descriptor once; with KeepDead it behaves like
// Postfix and hands the dead one out.
func TestCache_deadSessions(t *testing.T) {
	kill := map[string]func(peer int){
		"quiet":  func(int) {},
		"closed": func(peer int) { unix.Close(peer) },
		"spoke":  func(peer int) { unix.Write(peer, []byte("421 4.4.2 idle timeout\r\n")) },
		"reset": func(peer int) {
			unix.SetsockoptLinger(peer, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			unix.Close(peer)
		},
	}
	tests := []struct {
		name     string
		first    string // what happens to the first cached session's peer
		keepDead bool
		want     string // "first" or "second": which session a find returns
		dead     int64
	}{
		{"quiet first is handed out", "quiet", false, "first", 0},
		{"closed first is dropped", "closed", false, "second", 1},
		{"talking first is dropped", "spoke", false, "second", 1},
		{"reset first is dropped", "reset", false, "second", 1},
		{"KeepDead hands out a closed one", "closed", true, "first", 0},
	}
	for _, tt := range tests {
		for _, viaDest := range []bool{false, true} {
			name := tt.name + "/find_endp"
			if viaDest {
				name = tt.name + "/find_dest"
			}
			t.Run(name, func(t *testing.T) {
				before := cacheCountFDs(t)
				c := New(Options{KeepDead: tt.keepDead})
				s1, p1 := liveSession(t)
				s2, _ := liveSession(t)
				c.SaveEndp("endp", "prop1", s1, time.Minute)
				c.SaveEndp("endp", "prop2", s2, time.Minute)
				c.SaveDest("dest", "dprop", "endp", time.Minute)
				kill[tt.first](p1)

				var fd int
				var prop string
				var ok bool
				if viaDest {
					fd, _, prop, ok = c.FindDest("dest")
				} else {
					fd, prop, ok = c.FindEndp("endp")
				}
				want, wantProp := s1, "prop1"
				if tt.want == "second" {
					want, wantProp = s2, "prop2"
				}
				if !ok || fd != want || prop != wantProp {
					t.Fatalf("find = %d, %q, %v; want %d, %q", fd, prop, ok, want, wantProp)
				}
				unix.Close(fd)
				if got := c.Evictions().Dead; got != tt.dead {
					t.Errorf("Evictions().Dead = %d, want %d", got, tt.dead)
				}
				if tt.want == "second" && cacheFDOpen(s1) {
					t.Errorf("dead session fd %d still open", s1)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				// The peers still open are closed by t.Cleanup; what is left
				// here must be exactly those.
				if got, peers := cacheCountFDs(t), before+2; got > peers {
					t.Errorf("%d descriptors open after Close, want at most %d", got, peers)
				}
			})
		}
	}
}

// TestCache_allDeadIsMiss checks that a destination whose only sessions are
// dead is a miss, and that the bindings stay.
func TestCache_allDeadIsMiss(t *testing.T) {
	c := New(Options{})
	defer c.Close()
	s, p := liveSession(t)
	c.SaveEndp("endp", "prop", s, time.Minute)
	c.SaveDest("dest", "dprop", "endp", time.Minute)
	unix.Close(p)
	if fd, _, _, ok := c.FindDest("dest"); ok {
		unix.Close(fd)
		t.Fatalf("FindDest handed out a dead session")
	}
	if got := c.Size(); got != (Size{Dests: 1}) {
		t.Errorf("Size = %+v, want the binding only", got)
	}
	if cacheFDOpen(s) {
		t.Errorf("dead session fd %d still open", s)
	}
}

// TestCache_cycleAllocs checks that smtp(8)'s steady state (find_dest hit
// with the liveness peek on a real socket, save_dest refresh, save_endp of
// the same descriptor) allocates nothing once the cache holds the session.
func TestCache_cycleAllocs(t *testing.T) {
	c := New(Options{})
	defer c.Close()
	s, _ := liveSession(t)
	dest, destProp := "smtp\nexample.com\n", "destination=example.com\n\n"
	endp, endpProp := "smtp\n192.0.2.1\n25\n0\n", "reuse_count=1\n\n"
	c.SaveDest(dest, destProp, endp, time.Hour)
	c.SaveEndp(endp, endpProp, s, time.Hour)
	allocs := testing.AllocsPerRun(100, func() {
		fd, _, _, ok := c.FindDest(dest)
		if !ok {
			t.Fatalf("FindDest missed")
		}
		c.SaveDest(dest, destProp, endp, time.Hour)
		c.SaveEndp(endp, endpProp, fd, time.Hour)
	})
	if allocs != 0 {
		t.Errorf("find/save cycle: %v allocations, want 0", allocs)
	}
}
