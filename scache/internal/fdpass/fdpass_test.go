package fdpass

import (
	"errors"
	"io"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/fdtest"
)

func TestSendRecvFD(t *testing.T) {
	a, b := fdtest.UnixPair(t)
	fd := fdtest.PipeFD(t)
	if err := Send(a, fd); err != nil {
		t.Fatal(err)
	}
	got, err := Recv(b)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(got)
	if got == fd || !fdtest.SameFile(t, fd, got) {
		t.Errorf("received fd %d is not a new descriptor for the file of fd %d", got, fd)
	}
	flags, err := unix.FcntlInt(uintptr(got), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received fd is not close-on-exec (flags %#x, err %v)", flags, err)
	}
}

// TestRecvFD_burst writes a request and the descriptor back to back; a
// reader that consumes exactly the request bytes still gets the descriptor.
func TestRecvFD_burst(t *testing.T) {
	a, b := fdtest.UnixPair(t)
	fd := fdtest.PipeFD(t)
	req := []byte("request\x00save_endp\x00\x00")
	if _, err := a.Write(req); err != nil {
		t.Fatal(err)
	}
	if err := Send(a, fd); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(req))
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	got, err := Recv(b)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(got)
	if !fdtest.SameFile(t, fd, got) {
		t.Error("received descriptor is not the one sent")
	}
}

func TestRecvFD_failures(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		fds  int // descriptors attached
		eof  bool
		want error
	}{
		{"no descriptor", []byte{0}, 0, false, scache.ErrNoDescriptor},
		{"end of input", nil, 0, true, scache.ErrNoDescriptor},
		{"two descriptors", []byte{0}, 2, false, scache.ErrTooManyDescriptors},
		{"truncated control data", []byte{0}, MaxRecvFDs + 4, false, scache.ErrTooManyDescriptors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := fdtest.UnixPair(t)
			var fds []int
			for range tt.fds {
				fds = append(fds, fdtest.PipeFD(t))
			}
			before := fdtest.OpenFDs(t)
			if tt.eof {
				a.CloseWrite()
			} else {
				var oob []byte
				if len(fds) > 0 {
					oob = unix.UnixRights(fds...)
				}
				if _, _, err := a.WriteMsgUnix(tt.data, oob, nil); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Recv(b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Recv = %d, %v; want %v", got, err, tt.want)
			}
			if got != -1 {
				t.Errorf("fd = %d, want -1", got)
			}
			if after := fdtest.OpenFDs(t); after != before {
				t.Errorf("%d descriptors open after, %d before: received descriptors leaked", after, before)
			}
		})
	}
}
