package mastercompat

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// socketpair returns both ends of an AF_UNIX stream socketpair, as master's
// duplex_pipe makes for the status channel.
func socketpair(t *testing.T) (child, parent *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	child, parent = os.NewFile(uintptr(fds[0]), "child"), os.NewFile(uintptr(fds[1]), "parent")
	t.Cleanup(func() { child.Close(); parent.Close() })
	return child, parent
}

func TestAppendRecord(t *testing.T) {
	// PROTOCOL.md §6.4: pid 4242, generation 3 on a little-endian host.
	got := AppendRecord(nil, 4242, 3, StatusAvail)
	want := []byte{0x92, 0x10, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0}
	if nativeIsLittle() {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AppendRecord mismatch (-want +got):\n%s", diff)
		}
	}
	pid, gen, avail, err := ParseRecord(got)
	if err != nil || pid != 4242 || gen != 3 || avail != StatusAvail {
		t.Errorf("ParseRecord = %d, %d, %d, %v", pid, gen, avail, err)
	}
	if _, _, _, err := ParseRecord(got[:11]); err == nil {
		t.Error("ParseRecord accepted 11 bytes")
	}
}

func nativeIsLittle() bool { return AppendRecord(nil, 1, 0, 0)[0] == 1 }

func TestMaster_records(t *testing.T) {
	tests := []struct {
		name     string
		solitary bool
		want     []int32
	}{
		{"perBatch", false, []int32{StatusTaken, StatusAvail, StatusTaken, StatusAvail, StatusTaken, StatusAvail}},
		// A solitary child writes the first pair only: master counts one
		// use, and with a process limit of 1 does nothing else with them.
		{"solitary", true, []int32{StatusTaken, StatusAvail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			child, parent := socketpair(t)
			conn, err := net.FileConn(child)
			if err != nil {
				t.Fatal(err)
			}
			m := newMaster(conn, 4242, 15)
			m.Solitary = tt.solitary
			defer m.close()
			for _, busy := range []bool{true, false, true, false, true, false} {
				if err := m.Busy(busy); err != nil {
					t.Fatalf("Busy(%v): %v", busy, err)
				}
			}
			child.Close()
			conn.Close() // master reads to the end of what was written
			buf, err := io.ReadAll(parent)
			if err != nil || len(buf)%RecordSize != 0 {
				t.Fatalf("status channel: %d bytes, %v", len(buf), err)
			}
			var got []int32
			for i := 0; i < len(buf); i += RecordSize {
				pid, gen, avail, err := ParseRecord(buf[i : i+RecordSize])
				if err != nil || pid != 4242 || gen != 15 {
					t.Fatalf("record %d: pid %d gen %d err %v", i/RecordSize, pid, gen, err)
				}
				got = append(got, avail)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("avail sequence mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMaster_busyAllocs checks that a status record costs no allocation:
// the server's hook runs on every request.
func TestMaster_busyAllocs(t *testing.T) {
	child, parent := socketpair(t)
	conn, err := net.FileConn(child)
	if err != nil {
		t.Fatal(err)
	}
	m := newMaster(conn, 4242, 15)
	defer m.close()
	go io.Copy(io.Discard, parent)
	if allocs := testing.AllocsPerRun(100, func() { m.Busy(true); m.Busy(false) }); allocs != 0 {
		t.Errorf("%v allocations per TAKEN/AVAIL pair, want 0", allocs)
	}
}

func TestMaster_goneOnEOF(t *testing.T) {
	child, parent := socketpair(t)
	conn, err := net.FileConn(child)
	if err != nil {
		t.Fatal(err)
	}
	m := newMaster(conn, 1, 0)
	defer m.close()
	parent.Close() // postfix reload: master closes its end
	<-m.Gone()
	// TAKEN failures are ignored; AVAIL failures report master gone.
	if err := m.Busy(true); err != nil {
		t.Errorf("Busy(true) after master left: %v", err)
	}
	if err := m.Busy(false); !errors.Is(err, errMasterGone) {
		t.Errorf("Busy(false) after master left = %v, want ErrMasterGone", err)
	}
}

// failWriter accepts reads forever and fails every write.
type failWriter struct{ block chan struct{} }

func (f failWriter) Read([]byte) (int, error)  { <-f.block; return 0, io.EOF }
func (f failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }
func (f failWriter) Close() error              { close(f.block); return nil }

func TestMaster_goneOnAvailFailure(t *testing.T) {
	m := newMaster(failWriter{make(chan struct{})}, 1, 0)
	defer m.close()
	if err := m.Busy(true); err != nil {
		t.Fatalf("Busy(true) = %v, want nil (TAKEN failures are ignored)", err)
	}
	select {
	case <-m.Gone():
		t.Fatal("Gone closed after a failed TAKEN")
	default:
	}
	if err := m.Busy(false); !errors.Is(err, errMasterGone) {
		t.Fatalf("Busy(false) = %v, want ErrMasterGone", err)
	}
	<-m.Gone()
}

func TestIdleTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		it := NewIdleTimer(100 * time.Second)
		start := time.Now()
		time.Sleep(60 * time.Second)
		it.ConnCount(1) // a client connects: the timer stops
		time.Sleep(500 * time.Second)
		it.ConnCount(2)
		it.ConnCount(1)
		select {
		case <-it.Done():
			t.Fatal("idle timer fired while clients were connected")
		default:
		}
		it.ConnCount(0) // the last client leaves: full 100 s again
		left := time.Now()
		<-it.Done()
		if got := time.Since(left); got != 100*time.Second {
			t.Errorf("fired %v after the last client left, want 100s (%v since start)", got, time.Since(start))
		}
	})
}

func TestIdleTimer_startsRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		it := NewIdleTimer(100 * time.Second)
		<-it.Done()
		if got := time.Since(start); got != 100*time.Second {
			t.Errorf("fired after %v, want 100s", got)
		}
	})
}

func TestIdleTimer_stop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		it := NewIdleTimer(time.Second)
		it.Stop()
		it.ConnCount(0)
		time.Sleep(time.Hour)
		select {
		case <-it.Done():
			t.Fatal("stopped idle timer fired")
		default:
		}
	})
}

func TestWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fired := make(chan time.Time, 1)
		start := time.Now()
		w := NewWatchdog(10*time.Second, func() { fired <- time.Now() })
		for range 5 {
			time.Sleep(9 * time.Second)
			w.Kick()
		}
		select {
		case <-fired:
			t.Fatal("watchdog fired although kicked in time")
		default:
		}
		at := <-fired
		if got := at.Sub(start); got != 55*time.Second {
			t.Errorf("watchdog fired at %v, want 55s", got)
		}
		w.Stop()
	})
}

func mkdir(p string) error { return os.MkdirAll(p, 0o755) }
