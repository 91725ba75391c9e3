package cache

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Realistic strings, as smtp(8) of Postfix 3.7 sends them (PROTOCOL.md §5.2,
// §5.3): the cache keeps the labels and properties it is given.
const (
	benchDestProp = "destination=example.com\nhost_name=mx1.example.com\nhost_addr=192.0.2.10\ndestination_features=4096\n\n"
	benchEndpProp = "tls_level=1\nreuse_count=1\nendpoint_features=0\nexpire_time=1764489600\n\n"
)

func benchDestLabel(i int) string { return fmt.Sprintf("smtp\nexample%d.com\n", i) }
func benchEndpLabel(i int) string {
	return fmt.Sprintf("smtp\n10.%d.%d.%d\n25\n1\n", i>>16&255, i>>8&255, i&255)
}

// benchFDs returns n descriptors: dup()s of /dev/null when RLIMIT_NOFILE can
// be raised far enough (it can as root), otherwise fake numbers with the
// cache's close hook replaced by a no-op (reported with b.Logf). cleanup
// closes what is left.
func benchFDs(b *testing.B, c *Cache, n int) (fds []int, real bool) {
	b.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	need := uint64(n + 1000)
	if lim.Cur < need {
		old := lim
		lim.Cur, lim.Max = need, max(need, lim.Max)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			b.Logf("setrlimit(NOFILE, %d): %v: using fake descriptors", need, err)
			c.closeFD = func(int) error { return nil }
			for i := range n {
				fds = append(fds, 1<<24+i)
			}
			return fds, false
		}
		b.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	}
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatalf("open /dev/null: %v", err)
	}
	defer unix.Close(null)
	for range n {
		fd, err := unix.FcntlInt(uintptr(null), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			b.Fatalf("dup: %v", err)
		}
		fds = append(fds, fd)
	}
	return fds, true
}

// BenchmarkCache_cycle measures smtp(8)'s steady state against a cache that
// holds n sessions, each with its own destination and endpoint: find_dest
// (hit), then save_dest (a refresh) and save_endp of the same descriptor.
// One op is the whole three-request cycle.
//
// In the round-robin variant every destination is visited in turn, so at
// large n every cycle touches memory not used for n cycles and the figures
// grow with CPU cache misses (any hash table does). In the hot variant only
// 10 destinations are used while the other n-10 sessions sit idle, as most
// cached sessions do until they expire: it isolates the algorithmic cost,
// which must not depend on n.
func BenchmarkCache_cycle(b *testing.B) {
	for _, hot := range []bool{false, true} {
		for _, n := range []int{10, 1000, 10000, 100000} {
			name := fmt.Sprintf("roundrobin/sessions=%d", n)
			if hot {
				name = fmt.Sprintf("hot10/sessions=%d", n)
			}
			b.Run(name, func(b *testing.B) { benchCycle(b, n, hot) })
		}
	}
}

func benchCycle(b *testing.B, n int, hot bool) {
	c := New(Options{MaxSessions: -1})
	fds, real := benchFDs(b, c, n)
	dests := make([]string, n)
	endps := make([]string, n)
	for i := range n {
		dests[i], endps[i] = benchDestLabel(i), benchEndpLabel(i)
		c.SaveDest(dests[i], benchDestProp, endps[i], time.Hour)
		c.SaveEndp(endps[i], benchEndpProp, fds[i], time.Hour)
	}
	if !real {
		b.Logf("fake descriptors")
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		fd, _, _, ok := c.FindDest(dests[k])
		if !ok {
			b.Fatalf("FindDest(%q) missed", dests[k])
		}
		c.SaveDest(dests[k], benchDestProp, endps[k], time.Hour)
		c.SaveEndp(endps[k], benchEndpProp, fd, time.Hour)
		if k++; k == n || (hot && k == 10) {
			k = 0
		}
	}
	b.StopTimer()
	if got := c.Size(); got != (Size{n, n, n}) {
		b.Errorf("Size = %+v, want %d each", got, n)
	}
	if err := c.Close(); err != nil {
		b.Errorf("Close: %v", err)
	}
}

// BenchmarkCache_endpCycle is find_endp + save_endp on one of n endpoints.
func BenchmarkCache_endpCycle(b *testing.B) {
	for _, n := range []int{10, 100000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			c := New(Options{MaxSessions: -1})
			fds, _ := benchFDs(b, c, n)
			endps := make([]string, n)
			for i := range n {
				endps[i] = benchEndpLabel(i)
				c.SaveEndp(endps[i], benchEndpProp, fds[i], time.Hour)
			}
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				fd, _, ok := c.FindEndp(endps[k])
				if !ok {
					b.Fatalf("FindEndp missed")
				}
				c.SaveEndp(endps[k], benchEndpProp, fd, time.Hour)
				if k++; k == n {
					k = 0
				}
			}
			b.StopTimer()
			c.Close()
		})
	}
}

// BenchmarkCache_memory reports the Go heap held per cached session
// (runtime.MemStats.HeapAlloc after GC, divided by the number of sessions).
// Descriptor numbers are fake (the close hook is a no-op): Go heap usage
// does not depend on what the number refers to. Labels and properties are
// fresh copies, as the server decodes them from each request; the cache
// keeps copies of its own (see Cache), so this counts what it keeps. Two
// figures:
//   - session/session: a session under its own endpoint label;
//   - with-binding/session: + a destination binding with its own
//     destination label and properties (smtp saves both per connection).
func BenchmarkCache_memory(b *testing.B) {
	const n = 100000
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	cases := []struct {
		name     string
		withDest bool
	}{
		{"session", false},
		{"with-binding", true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var perSession float64
			for b.Loop() {
				b.StopTimer()
				before := heap()
				b.StartTimer()
				c := New(Options{MaxSessions: -1})
				c.closeFD = func(int) error { return nil }
				for i := range n {
					el, ep := benchEndpLabel(i), string([]byte(benchEndpProp))
					if tc.withDest {
						c.SaveDest(benchDestLabel(i), string([]byte(benchDestProp)), el, time.Hour)
					}
					c.SaveEndp(el, ep, 1<<24+i, time.Hour)
				}
				b.StopTimer()
				after := heap()
				perSession = float64(int64(after)-int64(before)) / n
				c.Close()
				b.StartTimer()
			}
			b.ReportMetric(perSession, "B/session")
		})
	}
}
