package mastercompat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Availability values of a status record (master/master_proto.h).
const (
	StatusTaken = 0 // MASTER_STAT_TAKEN: the child is busy
	StatusAvail = 1 // MASTER_STAT_AVAIL: the child is idle
)

// RecordSize is the size of MASTER_STATUS: {int pid; unsigned gen; int avail}.
const RecordSize = 12

// AppendRecord appends a status record in host byte order, as
// master/master_proto.c master_notify writes it.
func AppendRecord(dst []byte, pid int32, gen uint32, avail int32) []byte {
	dst = binary.NativeEndian.AppendUint32(dst, uint32(pid))
	dst = binary.NativeEndian.AppendUint32(dst, gen)
	return binary.NativeEndian.AppendUint32(dst, uint32(avail))
}

// ParseRecord decodes a status record (the inverse of AppendRecord).
func ParseRecord(b []byte) (pid int32, gen uint32, avail int32, err error) {
	if len(b) != RecordSize {
		return 0, 0, 0, fmt.Errorf("mastercompat: status record of %d bytes", len(b))
	}
	return int32(binary.NativeEndian.Uint32(b)), binary.NativeEndian.Uint32(b[4:]), int32(binary.NativeEndian.Uint32(b[8:])), nil
}

// errMasterGone reports that master(8) closed the status channel or that an
// AVAIL record could not be written: the child must run its exit handler and
// exit 0 (multi_server_abort).
var errMasterGone = errors.New("mastercompat: master disconnect")

// Master is the child's end of the status channel (fd 5). It writes status
// records and notices when master goes away. Safe for concurrent use.
type Master struct {
	// Solitary, set before the first Busy call, makes Busy write the first
	// TAKEN/AVAIL pair only. It is for a child that master(8) runs with a
	// process limit of 1 (the -l option), where the records after the
	// first pair change nothing master does (docs/protocol.md §5).
	Solitary bool

	ch  io.ReadWriteCloser
	pid int32
	gen uint32

	mu           sync.Mutex // serializes writes
	taken, avail [RecordSize]byte
	used         atomic.Bool // a TAKEN/AVAIL pair was written (Solitary)

	once sync.Once
	gone chan struct{}
}

// newMaster starts watching ch, the status channel, for master's
// disconnect: any read result (end of file, an error, or unexpected data)
// means master closed its end, as in multi_server_abort. pid and gen go
// into every record. The Master owns ch; Close closes it.
func newMaster(ch io.ReadWriteCloser, pid int, gen uint32) *Master {
	m := &Master{ch: ch, pid: int32(pid), gen: gen, gone: make(chan struct{})}
	AppendRecord(m.taken[:0], m.pid, m.gen, StatusTaken)
	AppendRecord(m.avail[:0], m.pid, m.gen, StatusAvail)
	go func() {
		var b [1]byte
		_, _ = ch.Read(b[:]) // any result, end of file, error or data, means master is gone
		m.setGone()
	}()
	return m
}

func (m *Master) setGone() { m.once.Do(func() { close(m.gone) }) }

// Gone is closed when master has gone away (end of file on the status
// channel, or a failed AVAIL write).
func (m *Master) Gone() <-chan struct{} { return m.gone }

// Busy sends TAKEN (busy) or AVAIL (idle); it has the shape of the scache
// Server's Busy hook. As in multi_server_execute, a failed TAKEN write is
// ignored, and a failed AVAIL write means master is gone (Gone is closed
// and an error returned). With Solitary set, it writes nothing once
// an AVAIL record has been written.
func (m *Master) Busy(busy bool) error {
	if m.Solitary && m.used.Load() {
		return nil
	}
	rec := m.avail[:]
	if busy {
		rec = m.taken[:]
	}
	m.mu.Lock()
	n, err := m.ch.Write(rec)
	m.mu.Unlock()
	if err == nil && n == RecordSize && !busy {
		m.used.Store(true)
	}
	if err == nil && n != RecordSize {
		err = io.ErrShortWrite
	}
	if err != nil && !busy {
		m.setGone()
		return fmt.Errorf("%w: %w", errMasterGone, err)
	}
	return nil
}

// close closes the status channel.
func (m *Master) close() error { return m.ch.Close() }
