package cache

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// cacheTestFD returns a fresh descriptor (an eventfd) for caching. The test
// closes it at cleanup unless the cache already did: cleanup checks with
// F_GETFD first, which is safe only because tests close found descriptors
// themselves and never reuse numbers across subtests in flight.
func cacheTestFD(t *testing.T) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatalf("eventfd: %v", err)
	}
	return fd
}

// cacheFDOpen reports whether fd is an open descriptor of this process.
func cacheFDOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return !errors.Is(err, unix.EBADF)
}

// cacheCountFDs counts the entries of /proc/self/fd.
func cacheCountFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents)
}

// cacheOp is one step of a cache scenario. Descriptors are named ("12", "13")
// after the fd numbers of Postfix's scache_multi.in; the test maps names to
// real eventfds.
type cacheOp struct {
	kind  string // saveEndp, saveDest, findEndp, findDest, sleep, size, open, closed, bindings
	ttl   time.Duration
	label string // destination or endpoint label
	prop  string // saveEndp: endpoint prop; saveDest: destination prop
	endp  string // saveDest: endpoint label
	fd    string // saveEndp: fd name; find: wanted fd name ("" = miss)
	dprop string // findDest: wanted destination prop
	eprop string // find: wanted endpoint prop
	size  Size
	fds   []string // open/closed: fds to check
	binds []string // bindings: wanted "endp/prop" list of label, oldest first
}

func runCacheOps(t *testing.T, c *Cache, ops []cacheOp) {
	t.Helper()
	fds := map[string]int{}
	var owned []int // descriptors handed out by finds: the test's to close
	defer func() {
		for _, fd := range owned {
			unix.Close(fd)
		}
	}()
	for i, o := range ops {
		where := fmt.Sprintf("step %d (%s %s)", i, o.kind, o.label)
		switch o.kind {
		case "saveEndp":
			fd := cacheTestFD(t)
			fds[o.fd] = fd
			c.SaveEndp(o.label, o.prop, fd, o.ttl)
		case "saveDest":
			c.SaveDest(o.label, o.prop, o.endp, o.ttl)
		case "findEndp":
			fd, prop, ok := c.FindEndp(o.label)
			if ok {
				owned = append(owned, fd)
			}
			checkCacheFind(t, where, fds, o, fd, "", prop, ok)
		case "findDest":
			fd, dprop, eprop, ok := c.FindDest(o.label)
			if ok {
				owned = append(owned, fd)
			}
			checkCacheFind(t, where, fds, o, fd, dprop, eprop, ok)
		case "sleep":
			time.Sleep(o.ttl)
			synctest.Wait()
		case "size":
			if diff := cmp.Diff(o.size, c.Size()); diff != "" {
				t.Errorf("%s: Size mismatch (-want +got):\n%s", where, diff)
			}
		case "open", "closed":
			for _, name := range o.fds {
				if got := cacheFDOpen(fds[name]); got != (o.kind == "open") {
					t.Errorf("%s: fd %s (%d) open = %v, want %v", where, name, fds[name], got, !got)
				}
			}
		case "bindings":
			var got []string
			for _, d := range c.Snapshot().Dests {
				if d.Label == o.label {
					for _, b := range d.Bindings {
						got = append(got, b.EndpLabel+"/"+b.DestProp)
					}
				}
			}
			if diff := cmp.Diff(o.binds, got); diff != "" {
				t.Errorf("%s: bindings mismatch (-want +got):\n%s", where, diff)
			}
		default:
			t.Fatalf("%s: unknown cacheOp", where)
		}
	}
}

func checkCacheFind(t *testing.T, where string, fds map[string]int, o cacheOp, fd int, dprop, eprop string, ok bool) {
	t.Helper()
	if o.fd == "" {
		if ok || fd != -1 || dprop != "" || eprop != "" {
			t.Errorf("%s: got hit fd=%d dprop=%q eprop=%q, want miss", where, fd, dprop, eprop)
		}
		return
	}
	if !ok {
		t.Errorf("%s: got miss, want fd %s", where, o.fd)
		return
	}
	if fd != fds[o.fd] {
		t.Errorf("%s: got fd %d, want fd %s (%d)", where, fd, o.fd, fds[o.fd])
	}
	if dprop != o.dprop || eprop != o.eprop {
		t.Errorf("%s: got props (%q, %q), want (%q, %q)", where, dprop, eprop, o.dprop, o.eprop)
	}
	if !cacheFDOpen(fd) {
		t.Errorf("%s: found fd %d is closed", where, fd)
	}
}

const sec = time.Second

func opSaveEndp(ttl time.Duration, label, prop, fd string) cacheOp {
	return cacheOp{kind: "saveEndp", ttl: ttl, label: label, prop: prop, fd: fd}
}
func opSaveDest(ttl time.Duration, dest, prop, endp string) cacheOp {
	return cacheOp{kind: "saveDest", ttl: ttl, label: dest, prop: prop, endp: endp}
}
func opFindEndp(label, fd, eprop string) cacheOp {
	return cacheOp{kind: "findEndp", label: label, fd: fd, eprop: eprop}
}
func opFindDest(label, fd, dprop, eprop string) cacheOp {
	return cacheOp{kind: "findDest", label: label, fd: fd, dprop: dprop, eprop: eprop}
}
func opSleep(d time.Duration) cacheOp          { return cacheOp{kind: "sleep", ttl: d} }
func opSize(d, e, n int) cacheOp               { return cacheOp{kind: "size", size: Size{d, e, n}} }
func opOpen(fds ...string) cacheOp             { return cacheOp{kind: "open", fds: fds} }
func opClosed(fds ...string) cacheOp           { return cacheOp{kind: "closed", fds: fds} }
func opBindings(d string, b ...string) cacheOp { return cacheOp{kind: "bindings", label: d, binds: b} }

// TestCache_scenarios runs the scenarios of Postfix's
// global/scache_multi.in (PROTOCOL.md §4.8) plus the semantics of §4.2-4.6,
// on a fake clock.
func TestCache_scenarios(t *testing.T) {
	tests := []struct {
		name string
		ops  []cacheOp
	}{
		{"destination refresh", []cacheOp{
			opSaveDest(2*sec, "a_dest", "a_prop", "b_endp"),
			opSleep(1 * sec),
			opSaveDest(2*sec, "a_dest", "a_prop", "b_endp"),
			opSleep(1 * sec),
			opSaveDest(2*sec, "a_dest", "a_prop", "b_endp"),
			opBindings("a_dest", "b_endp/a_prop"),
			opSleep(1500 * time.Millisecond), // t=3.5: alive only thanks to the refresh at t=2
			opSize(1, 0, 0),
			opSleep(1 * sec), // t=4.5
			opSize(0, 0, 0),
			opBindings("a_dest"),
		}},
		{"refresh to a shorter ttl keeps the place", []cacheOp{
			opSaveDest(2*sec, "d", "p", "e1"),
			opSaveDest(2*sec, "d", "p", "e2"),
			opSaveDest(2*sec, "d", "p", "e3"),
			opSaveDest(1*sec, "d", "p", "e1"),
			opBindings("d", "e1/p", "e2/p", "e3/p"),
			opSleep(1500 * time.Millisecond),
			opBindings("d", "e2/p", "e3/p"),
			opSleep(1 * sec),
			opSize(0, 0, 0),
		}},
		{"destination name-space collisions", []cacheOp{
			opSaveDest(2*sec, "a_dest", "a_prop", "b_endp"),
			opSleep(1 * sec),
			opSaveDest(2*sec, "a_dest", "a_prop2", "b_endp"),
			opSleep(1 * sec),
			opSaveDest(2*sec, "a_dest", "a_prop2", "b_endp2"),
			opSleep(500 * time.Millisecond), // t=2.5: the first has expired
			opBindings("a_dest", "b_endp/a_prop2", "b_endp2/a_prop2"),
			opSize(1, 0, 0),
			opSleep(1 * sec), // t=3.5
			opBindings("a_dest", "b_endp2/a_prop2"),
			opSleep(1 * sec), // t=4.5: the head is gone with the last binding
			opSize(0, 0, 0),
		}},
		{"endpoint collisions", []cacheOp{
			opSaveEndp(2*sec, "b_endp", "b_prop", "12"),
			opSaveEndp(2*sec, "b_endp", "b_prop", "13"),
			opSize(0, 1, 2),
			opOpen("12", "13"),
			opSleep(3 * sec),
			opSize(0, 0, 0),
			opClosed("12", "13"),
		}},
		{"combined lookups", []cacheOp{
			opSaveDest(10*sec, "a_dest", "a_prop", "b_endp"),
			opSaveDest(10*sec, "a_dest", "a_prop2", "b_endp"),
			opSaveDest(10*sec, "a_dest", "a_prop2", "b_endp2"),
			opSaveEndp(10*sec, "b_endp", "b_prop", "12"),
			opSaveEndp(10*sec, "b_endp", "b_prop", "13"),
			opSize(1, 1, 2),
			opFindDest("a_dest", "12", "a_prop", "b_prop"),
			opFindDest("a_dest", "13", "a_prop", "b_prop"),
			opFindDest("a_dest", "", "", ""),
			opSize(1, 0, 0),
			opBindings("a_dest", "b_endp/a_prop", "b_endp/a_prop2", "b_endp2/a_prop2"),
			opSaveEndp(10*sec, "b_endp2", "b_prop2", "12b"),
			opSaveEndp(10*sec, "b_endp2", "b_prop2", "13b"),
			opSaveEndp(10*sec, "b_endp2", "b_prop2", "14b"),
			opFindDest("a_dest", "12b", "a_prop2", "b_prop2"),
			opFindDest("a_dest", "13b", "a_prop2", "b_prop2"),
			opFindDest("a_dest", "14b", "a_prop2", "b_prop2"),
			opFindDest("a_dest", "", "", ""),
			opSize(1, 0, 0),
			opBindings("a_dest", "b_endp/a_prop", "b_endp/a_prop2", "b_endp2/a_prop2"),
		}},
		{"find_endp is FIFO and removes", []cacheOp{
			opSaveEndp(2*sec, "e", "p1", "1"),
			opSaveEndp(2*sec, "e", "p2", "2"),
			opSaveEndp(2*sec, "e", "p1", "3"),
			opSize(0, 1, 3),
			opFindEndp("e", "1", "p1"),
			opFindEndp("e", "2", "p2"),
			opFindEndp("e", "3", "p1"),
			opFindEndp("e", "", ""),
			opSize(0, 0, 0),
			opSleep(3 * sec), // handed-out descriptors are the caller's: never closed by expiry
			opOpen("1", "2", "3"),
		}},
		{"find misses", []cacheOp{
			opFindEndp("nothing", "", ""),
			opFindDest("nothing", "", "", ""),
			opSaveDest(2*sec, "d", "p", "no_such_endp"),
			opSize(1, 0, 0),
			opFindDest("d", "", "", ""),
			opSaveEndp(2*sec, "other", "p", "1"),
			opFindDest("d", "", "", ""),
			opFindEndp("d", "", ""), // destination and endpoint name spaces are separate
			opSize(1, 1, 1),
		}},
		{"find_dest does not touch the binding timer", []cacheOp{
			opSaveDest(2*sec, "d", "dp", "e"),
			opSaveEndp(5*sec, "e", "ep", "1"),
			opSaveEndp(5*sec, "e", "ep", "2"),
			opSleep(1 * sec),
			opFindDest("d", "1", "dp", "ep"),
			opSleep(1500 * time.Millisecond), // t=2.5: binding expired, session remains
			opFindDest("d", "", "", ""),
			opFindEndp("e", "2", "ep"),
		}},
		{"sessions and bindings expire independently", []cacheOp{
			opSaveDest(1*sec, "d", "dp", "e"),
			opSaveEndp(3*sec, "e", "ep", "1"),
			opSaveEndp(2*sec, "e", "ep", "2"), // a younger session may expire first
			opSleep(1500 * time.Millisecond),
			opSize(0, 1, 2),
			opSleep(1 * sec), // t=2.5
			opOpen("1"),
			opClosed("2"),
			opSize(0, 1, 1),
			opSleep(1 * sec), // t=3.5
			opClosed("1"),
			opSize(0, 0, 0),
		}},
		{"same endpoint under several destinations", []cacheOp{
			opSaveDest(2*sec, "d1", "p1", "e"),
			opSaveDest(2*sec, "d2", "p2", "e"),
			opSaveEndp(2*sec, "e", "ep", "1"),
			opSaveEndp(2*sec, "e", "ep", "2"),
			opSize(2, 1, 2),
			opFindDest("d2", "1", "p2", "ep"),
			opFindDest("d1", "2", "p1", "ep"),
			opFindDest("d1", "", "", ""),
			opSize(2, 0, 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := New(Options{Logger: cacheTestLogger(t)})
				runCacheOps(t, c, tt.ops)
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		})
	}
}

func cacheTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// TestCache_expiryClosesOnce checks that an expired session's descriptor is
// closed right at expiry, and that neither Close nor later expiries close
// it again (a reused number would otherwise be hit).
func TestCache_expiryClosesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		closes := map[int]int{}
		c := New(Options{Logger: cacheTestLogger(t)})
		c.closeFD = func(fd int) error {
			mu.Lock()
			closes[fd]++
			mu.Unlock()
			return unix.Close(fd)
		}
		a, b := cacheTestFD(t), cacheTestFD(t)
		c.SaveEndp("e", "p", a, 1*sec)
		c.SaveEndp("e", "p", b, 3*sec)
		time.Sleep(1 * sec)
		synctest.Wait()
		if cacheFDOpen(a) {
			t.Errorf("fd %d still open right after its expiry", a)
		}
		if !cacheFDOpen(b) {
			t.Errorf("fd %d closed before its expiry", b)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if cacheFDOpen(b) {
			t.Errorf("fd %d open after Close", b)
		}
		time.Sleep(5 * sec)
		synctest.Wait()
		want := map[int]int{a: 1, b: 1}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff(want, closes); diff != "" {
			t.Errorf("closes per fd mismatch (-want +got):\n%s", diff)
		}
		if got, want := c.Evictions(), (Evictions{Expired: 1, Closed: 1}); got != want {
			t.Errorf("Evictions = %+v, want %+v", got, want)
		}
	})
}

// TestCache_closeWarning checks the Postfix warning when closing an expired
// descriptor fails.
func TestCache_closeWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		c := New(Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		const bogus = 1<<20 + 7 // above any RLIMIT_NOFILE here: never open
		c.SaveEndp("e", "p", bogus, 1*sec)
		time.Sleep(2 * sec)
		synctest.Wait()
		want := `level=WARN msg="scache_multi_drop_endp: close(1048583): Bad file descriptor" fd=1048583`
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log = %q, want it to contain %q", buf.String(), want)
		}
	})
}

func TestCache_maxSessions(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		saves     int
		wantOpen  []bool // per saved fd, in save order
		wantLimit int64
	}{
		{"unlimited", -1, 3, []bool{true, true, true}, 0},
		{"at the limit", 3, 3, []bool{true, true, true}, 0},
		{"oldest evicted", 2, 4, []bool{false, false, true, true}, 2},
		{"one", 1, 2, []bool{false, true}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{MaxSessions: tt.max, Logger: cacheTestLogger(t)})
			// All descriptors first: a number closed by an eviction must not
			// be reused by a later eventfd before it is checked.
			var fds []int
			for range tt.saves {
				fds = append(fds, cacheTestFD(t))
			}
			for i, fd := range fds {
				// Alternate endpoints: the oldest overall is evicted, not the
				// oldest of the endpoint being saved.
				c.SaveEndp(fmt.Sprintf("e%d", i%2), "p", fd, time.Hour)
			}
			var got []bool
			for _, fd := range fds {
				got = append(got, cacheFDOpen(fd))
			}
			if diff := cmp.Diff(tt.wantOpen, got); diff != "" {
				t.Errorf("open after saves mismatch (-want +got):\n%s", diff)
			}
			if got := c.Evictions().Limit; got != tt.wantLimit {
				t.Errorf("Evictions().Limit = %d, want %d", got, tt.wantLimit)
			}
			if got := c.Size().Sessions; tt.max > 0 && got > tt.max {
				t.Errorf("Size().Sessions = %d, want <= %d", got, tt.max)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			for i, fd := range fds {
				if cacheFDOpen(fd) {
					t.Errorf("fd #%d (%d) open after Close", i, fd)
				}
			}
		})
	}
}

func TestCache_close(t *testing.T) {
	before := cacheCountFDs(t)
	c := New(Options{Logger: cacheTestLogger(t)})
	var fds []int
	for i := range 10 {
		fd := cacheTestFD(t)
		fds = append(fds, fd)
		c.SaveEndp(fmt.Sprintf("e%d", i%3), "p", fd, time.Hour)
		c.SaveDest(fmt.Sprintf("d%d", i%4), "dp", fmt.Sprintf("e%d", i%3), time.Hour)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, fd := range fds {
		if cacheFDOpen(fd) {
			t.Errorf("fd %d open after Close", fd)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := c.Size(); got != (Size{}) {
		t.Errorf("Size after Close = %+v, want zero", got)
	}
	late := cacheTestFD(t)
	c.SaveEndp("e0", "p", late, time.Hour)
	if cacheFDOpen(late) {
		t.Errorf("SaveEndp after Close left fd %d open", late)
	}
	c.SaveDest("d0", "dp", "e0", time.Hour)
	if _, _, ok := c.FindEndp("e0"); ok {
		t.Errorf("FindEndp after Close hit")
	}
	if _, _, _, ok := c.FindDest("d0"); ok {
		t.Errorf("FindDest after Close hit")
	}
	if got, want := c.Evictions().Closed, int64(11); got != want {
		t.Errorf("Evictions().Closed = %d, want %d", got, want)
	}
	if after := cacheCountFDs(t); after != before {
		t.Errorf("fd count %d before, %d after", before, after)
	}
}

func TestCache_closeError(t *testing.T) {
	c := New(Options{})
	c.SaveEndp("e", "p", 1<<20+9, time.Hour)
	err := c.Close()
	if !errors.Is(err, unix.EBADF) {
		t.Errorf("Close = %v, want EBADF", err)
	}
}

func TestCache_snapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := New(Options{})
		c.SaveDest("d2", "p", "e", 2*sec)
		c.SaveDest("d1", "p1", "e", 2*sec)
		time.Sleep(1 * sec)
		c.SaveDest("d1", "p2", "e", 2*sec)
		c.SaveDest("d1", "p1", "e", 1*sec) // refresh: same created, new expiry
		c.SaveEndp("e", "ep", 1<<20+11, 2*sec)
		c.closeFD = func(int) error { return nil } // the fake descriptor
		at := func(d time.Duration) time.Time { return start.Add(d) }
		want := Snapshot{
			Dests: []SnapshotDest{
				{Label: "d1", Bindings: []SnapshotBinding{
					{EndpLabel: "e", DestProp: "p1", Created: at(0), Expires: at(2 * sec)},
					{EndpLabel: "e", DestProp: "p2", Created: at(1 * sec), Expires: at(3 * sec)},
				}},
				{Label: "d2", Bindings: []SnapshotBinding{
					{EndpLabel: "e", DestProp: "p", Created: at(0), Expires: at(2 * sec)},
				}},
			},
			Endps: []SnapshotEndp{
				{Label: "e", Sessions: []SnapshotSession{
					{FD: 1<<20 + 11, EndpProp: "ep", Created: at(1 * sec), Expires: at(3 * sec)},
				}},
			},
		}
		if diff := cmp.Diff(want, c.Snapshot()); diff != "" {
			t.Errorf("Snapshot mismatch (-want +got):\n%s", diff)
		}
		c.Close()
	})
}

// TestCache_concurrent hammers the cache from several goroutines with real
// descriptors and tiny ttls so that expiry races with saves and finds (run
// it with -race). Every descriptor must be closed exactly once in the end:
// by the cache (expiry, limit, Close) or by the test after a find.
func TestCache_concurrent(t *testing.T) {
	before := cacheCountFDs(t)
	c := New(Options{MaxSessions: 50, Logger: cacheTestLogger(t)})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				e := fmt.Sprintf("e%d", r.IntN(8))
				d := fmt.Sprintf("d%d", r.IntN(4))
				ttl := time.Duration(r.IntN(2000)) * time.Microsecond
				switch r.IntN(5) {
				case 0, 1:
					fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
					if err != nil {
						t.Errorf("eventfd: %v", err)
						return
					}
					c.SaveEndp(e, "p", fd, ttl)
				case 2:
					c.SaveDest(d, "dp", e, ttl)
				case 3:
					if fd, _, ok := c.FindEndp(e); ok {
						if err := unix.Close(fd); err != nil {
							t.Errorf("close found fd %d: %v", fd, err)
						}
					}
				case 4:
					if fd, _, _, ok := c.FindDest(d); ok {
						if err := unix.Close(fd); err != nil {
							t.Errorf("close found fd %d: %v", fd, err)
						}
					}
				}
				if sz := c.Size(); sz.Sessions > 50 {
					t.Errorf("Size().Sessions = %d > MaxSessions", sz.Sessions)
				}
				if r.IntN(100) == 0 {
					c.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if after := cacheCountFDs(t); after != before {
		t.Errorf("fd leak: %d before, %d after", before, after)
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			t.Logf("%s -> %s", e.Name(), l)
		}
	}
}

// TestCache_expiryInvariant checks the expiry lists and the class heap
// after random operations with several ttls, including refreshes that move
// a binding's deadline both ways.
func TestCache_expiryInvariant(t *testing.T) {
	c := New(Options{MaxSessions: 300})
	c.closeFD = func(int) error { return nil }
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		ttl := time.Duration(r.IntN(4)+1000) * time.Hour
		switch r.IntN(4) {
		case 0:
			c.SaveEndp(fmt.Sprint("e", r.IntN(20)), "p", i, ttl)
		case 1:
			c.SaveDest(fmt.Sprint("d", r.IntN(20)), fmt.Sprint("p", r.IntN(3)), fmt.Sprint("e", r.IntN(20)), ttl)
		case 2:
			c.FindEndp(fmt.Sprint("e", r.IntN(20)))
		case 3:
			c.FindDest(fmt.Sprint("d", r.IntN(20)))
		}
		c.mu.Lock()
		if len(c.byTTL) != len(c.classes) {
			t.Fatalf("op %d: %d classes in map, %d in heap", i, len(c.byTTL), len(c.classes))
		}
		var sess, binds int
		for j, cl := range c.classes {
			if cl.idx != j {
				t.Fatalf("op %d: classes[%d].idx = %d", i, j, cl.idx)
			}
			if j > 0 && c.classes[(j-1)/2].first.expires > cl.first.expires {
				t.Fatalf("op %d: class heap order broken at %d", i, j)
			}
			if cl.first == nil {
				t.Fatalf("op %d: empty class in heap", i)
			}
			for e := cl.first; e != nil; e = e.tnext {
				if e.cls != cl || (e.tnext != nil && e.tnext.expires < e.expires) {
					t.Fatalf("op %d: class list broken", i)
				}
				if cl.key.sess {
					sess++
				} else {
					binds++
				}
			}
		}
		n, nb := 0, 0
		for _, h := range c.endps {
			for e := h.first; e != nil; e = e.next {
				n++
			}
		}
		for _, h := range c.dests {
			for e := h.first; e != nil; e = e.next {
				nb++
			}
		}
		if n != c.sessions || sess != n || binds != nb {
			t.Fatalf("op %d: sessions %d in lists, %d in classes, counter %d; bindings %d vs %d",
				i, n, sess, c.sessions, nb, binds)
		}
		c.mu.Unlock()
	}
	c.Close()
}

// TestCache_maxSessionsOldestAcrossTTLs checks that the limit evicts the
// session saved first, not the one that would expire first.
func TestCache_maxSessionsOldestAcrossTTLs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Options{MaxSessions: 2, Logger: cacheTestLogger(t)})
		a, b, d := cacheTestFD(t), cacheTestFD(t), cacheTestFD(t)
		c.SaveEndp("e1", "p", a, 3*time.Hour)
		time.Sleep(time.Second)
		c.SaveEndp("e2", "p", b, time.Hour)
		time.Sleep(time.Second)
		c.SaveEndp("e1", "p", d, 2*time.Hour)
		got := []bool{cacheFDOpen(a), cacheFDOpen(b), cacheFDOpen(d)}
		if diff := cmp.Diff([]bool{false, true, true}, got); diff != "" {
			t.Errorf("open mismatch (-want +got):\n%s", diff)
		}
		if fd, _, ok := c.FindEndp("e1"); !ok || fd != d {
			t.Errorf("FindEndp(e1) = %d, %v; want %d", fd, ok, d)
		} else {
			unix.Close(fd)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// TestCache_layout guards the per-connection heap (docs/bench/notes.md,
// issue 20 §5): an entry fits the 112-byte size class, a head the 24-byte
// one, and a binding and the endpoint list share one copy of the endpoint
// label whichever of save_dest and save_endp comes first, also with
// clients interleaved and when the list is recreated after a find.
func TestCache_layout(t *testing.T) {
	if got := unsafe.Sizeof(entry{}); got > 112 {
		t.Errorf("entry is %d bytes, want at most 112", got)
	}
	if got := unsafe.Sizeof(head{}); got > 24 {
		t.Errorf("head is %d bytes, want at most 24", got)
	}
	// fresh returns a copy of s with its own backing array, as the server
	// decodes it from a request.
	fresh := func(s string) string { return string([]byte(s)) }
	const endp = "smtp\n192.0.2.1\n25\n0\n" // longer than a byte: no static copy
	shared := func(t *testing.T, c *Cache) {
		t.Helper()
		c.mu.Lock()
		defer c.mu.Unlock()
		b, h := c.dests["d"].first, c.endps[endp]
		if unsafe.StringData(b.endp) != unsafe.StringData(h.label) {
			t.Errorf("binding and endpoint list hold separate copies of the endpoint label")
		}
	}
	for _, destFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("destFirst=%v", destFirst), func(t *testing.T) {
			c := New(Options{})
			c.closeFD = func(int) error { return nil }
			defer c.Close()
			if destFirst {
				c.SaveDest("d", "dp", fresh(endp), time.Hour)
				c.SaveEndp(fresh(endp), "ep", 1<<20, time.Hour)
				shared(t, c)
			} else {
				// The order smtp(8) does not use: the binding takes the
				// endpoint list's copy.
				c.SaveEndp(fresh(endp), "ep", 1<<20, time.Hour)
				c.SaveDest("d", "dp", fresh(endp), time.Hour)
				shared(t, c)
			}
			// The steady state: find_dest empties the endpoint list,
			// save_dest refreshes, save_endp makes a new list.
			fd, _, _, ok := c.FindDest("d")
			if !ok {
				t.Fatalf("FindDest missed")
			}
			c.SaveDest("d", "dp", fresh(endp), time.Hour)
			c.SaveEndp(fresh(endp), "ep", fd, time.Hour)
			shared(t, c)
		})
	}
	t.Run("interleaved", func(t *testing.T) {
		// Two smtp(8) processes: both save_dest, then both save_endp.
		c := New(Options{})
		c.closeFD = func(int) error { return nil }
		defer c.Close()
		// The second endpoint in another slot of recentEndps (a
		// collision, 1 in 128, would make the first save_endp miss).
		endp2 := endp + "x"
		for c.recentSlot(endp2) == c.recentSlot(endp) {
			endp2 += "x"
		}
		c.SaveDest("d", "dp", fresh(endp), time.Hour)
		c.SaveDest("d2", "dp", fresh(endp2), time.Hour)
		c.SaveEndp(fresh(endp), "ep", 1<<20, time.Hour)
		c.SaveEndp(fresh(endp2), "ep", 1<<20+1, time.Hour)
		shared(t, c)
	})
}

// TestHead_list checks the list of a head (the first entry's prev is the
// last) against a slice, after each append or removal: the order from
// first, every back link, and emptiness.
func TestHead_list(t *testing.T) {
	tests := []struct {
		name string
		ops  []int // n >= 0: append entry n; -n-1: remove entry n
	}{
		{"one", []int{0, -1}},
		{"fifo", []int{0, 1, 2, -1, -2, -3}},
		{"lifo", []int{0, 1, 2, -3, -2, -1}},
		{"middle", []int{0, 1, 2, -2, 3, -1, -4, -3}},
		{"refill", []int{0, -1, 1, 2, -2, 0, -3, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h head
			es := make([]*entry, 8)
			for i := range es {
				es[i] = &entry{created: int64(i)}
			}
			want := []int64{}
			for i, o := range tt.ops {
				var empty bool
				if o >= 0 {
					h.append(es[o])
					want = append(want, int64(o))
				} else {
					empty = h.remove(es[-o-1])
					want = slices.DeleteFunc(want, func(v int64) bool { return v == int64(-o-1) })
					if es[-o-1].prev != nil || es[-o-1].next != nil {
						t.Fatalf("op %d: removed entry keeps its links", i)
					}
				}
				got := []int64{}
				var prev *entry
				for e := h.first; e != nil; e = e.next {
					if e != h.first && e.prev != prev {
						t.Fatalf("op %d: entry %d: prev is not its predecessor", i, e.created)
					}
					got = append(got, e.created)
					prev = e
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("op %d: list (-want +got):\n%s", i, diff)
				}
				if h.first != nil && h.first.prev != prev {
					t.Fatalf("op %d: first.prev is not the last entry", i)
				}
				if o < 0 && empty != (len(want) == 0) {
					t.Fatalf("op %d: remove reported empty %v with %d left", i, empty, len(want))
				}
			}
		})
	}
}

// aliased returns b's bytes as a string without copying them, as the
// server hands its read buffers to the cache.
func aliased(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// TestCache_aliasedStrings checks the cache's memory contract: strings
// that alias a buffer the caller overwrites after the call (the server's
// read buffers) are copied when the cache keeps them, whether they are new
// or equal to strings it holds.
func TestCache_aliasedStrings(t *testing.T) {
	c := New(Options{KeepDead: true})
	defer c.Close()
	buf := func(s string) []byte { return []byte(s) }
	destLabel, destProp, endpLabel, endpProp := buf("dest"), buf("dprop"), buf("endp"), buf("eprop")
	scribble := func(bs ...[]byte) {
		for _, b := range bs {
			for i := range b {
				b[i] = '#'
			}
		}
	}
	for round := range 3 { // new strings, then equal ones already held
		copy(destLabel, "dest")
		copy(destProp, "dprop")
		copy(endpLabel, "endp")
		copy(endpProp, "eprop")
		c.SaveDest(aliased(destLabel), aliased(destProp), aliased(endpLabel), time.Hour)
		c.SaveEndp(aliased(endpLabel), aliased(endpProp), cacheTestFD(t), time.Hour)
		scribble(destLabel, destProp, endpLabel, endpProp)
		fd, dp, ep, ok := c.FindDest("dest")
		if !ok || dp != "dprop" || ep != "eprop" {
			t.Fatalf("round %d: FindDest = %d, %q, %q, %v; want dprop, eprop", round, fd, dp, ep, ok)
		}
		unix.Close(fd)
		if got := c.Snapshot(); len(got.Dests) != 1 || got.Dests[0].Label != "dest" {
			t.Fatalf("round %d: snapshot %+v", round, got.Dests)
		}
	}
}
