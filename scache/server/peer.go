package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/goscache/goscache/scache/internal/errs"
	"golang.org/x/sys/unix"
)

// DefaultRefusalLogInterval is how often a refused user is logged at most
// when PeerPolicy.LogInterval is 0.
const DefaultRefusalLogInterval = time.Minute

// PeerPolicy says which local users may talk to a Server over a Unix
// socket. Whoever may use the cache can take any cached connection and
// write into it, so the check matters wherever the socket's permissions do
// not already keep others out. The server asks the kernel who the client
// is (SO_PEERCRED, the credentials the client had when it connected), once
// per accepted connection and before the protocol announcement. Root and
// the server's own effective user are always allowed. A refused client is
// closed without a byte and logged as a warning, at most once per user
// and LogInterval; every refusal is counted (refused_clients in the goscache_stats reply). The zero
// value allows root and the server's user only.
type PeerPolicy struct {
	// UIDs are further users allowed (under master(8): mail_owner).
	UIDs []int
	// GIDs are groups whose members are allowed: a client whose effective
	// group or one of whose supplementary groups (SO_PEERGROUPS) is listed.
	GIDs []int
	// LogInterval is the shortest time between two log lines about the
	// same refused user; 0 means DefaultRefusalLogInterval.
	LogInterval time.Duration
}

// credentials is what the kernel reports about the process at the other end
// of a Unix socket.
type credentials struct {
	PID, UID, GID int
	// Groups returns the peer's supplementary groups (SO_PEERGROUPS). It is
	// called only when the policy names groups and the effective ids did
	// not settle the question.
	Groups func() ([]int, error)
}

// allows reports whether the policy admits a peer; euid is the server's
// own effective user id.
func (p *PeerPolicy) allows(cred credentials, euid int) bool {
	if cred.UID == 0 || cred.UID == euid || slices.Contains(p.UIDs, cred.UID) {
		return true
	}
	if len(p.GIDs) == 0 {
		return false
	}
	if slices.Contains(p.GIDs, cred.GID) {
		return true
	}
	if cred.Groups == nil {
		return false
	}
	groups, err := cred.Groups()
	if err != nil {
		return false
	}
	for _, g := range groups {
		if slices.Contains(p.GIDs, g) {
			return true
		}
	}
	return false
}

// errNoCredentials means a connection cannot tell who is at the other end.
var errNoCredentials = errors.New("scache: no peer credentials on this kind of connection")

// peerCred asks the kernel for the credentials of nc's peer; Groups is
// set only when withGroups.
func peerCred(nc net.Conn, withGroups bool) (credentials, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return credentials{}, errNoCredentials
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return credentials{}, err
	}
	var (
		u    *unix.Ucred
		uerr error
	)
	if err := raw.Control(func(fd uintptr) {
		u, uerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return credentials{}, err
	}
	if uerr != nil {
		return credentials{}, uerr
	}
	cred := credentials{PID: int(u.Pid), UID: int(u.Uid), GID: int(u.Gid)}
	if !withGroups {
		return cred, nil
	}
	cred.Groups = func() ([]int, error) {
		var groups []int
		var gerr error
		if err := raw.Control(func(fd uintptr) { groups, gerr = peerGroups(int(fd)) }); err != nil {
			return nil, err
		}
		return groups, gerr
	}
	return cred, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13 and later): the supplementary
// groups the peer had when it connected.
func peerGroups(fd int) ([]int, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == unix.ERANGE && int(n/4) > len(buf) && n/4 <= 1<<16:
			buf = make([]uint32, n/4)
			continue
		case errno != 0:
			return nil, errno
		}
		groups := make([]int, n/4)
		for i := range groups {
			groups[i] = int(buf[i])
		}
		return groups, nil
	}
}

// checkPeer applies the server's PeerPolicy to a new connection. It
// reports false, after counting and (rate-limited) logging the refusal,
// when the connection must be closed unanswered.
func (s *Server) checkPeer(nc net.Conn) bool {
	p := s.opts.Peers
	if p == nil {
		return true
	}
	cred, err := peerCred(nc, len(p.GIDs) > 0)
	if err == nil && p.allows(cred, os.Geteuid()) {
		return true
	}
	s.refused.Add(1)
	every := p.LogInterval
	if every <= 0 {
		every = DefaultRefusalLogInterval
	}
	if err != nil {
		// Rate-limited as one user of its own.
		if ok, _ := s.refusals.note(refusalNoCred, time.Now(), every); ok {
			s.logger.Warn("refusing connection: cannot get peer credentials: " + errs.Text(err))
		}
		return false
	}
	if ok, suppressed := s.refusals.note(cred.UID, time.Now(), every); ok {
		msg := fmt.Sprintf("refusing connection from uid %d (pid %d, gid %d): user not allowed to use this service", cred.UID, cred.PID, cred.GID)
		if suppressed > 0 {
			msg += " (" + strconv.Itoa(suppressed) + " more refused since last logged)"
		}
		s.logger.Warn(msg)
	}
	return false
}

// refuse closes a connection the Server cannot serve (see newConn), unanswered,
// and counts and logs it like a refused peer: the warning at most once per
// DefaultRefusalLogInterval.
func (s *Server) refuse(nc net.Conn, why error) {
	// Counted and logged before the close, which the client sees.
	s.refused.Add(1)
	if ok, _ := s.refusals.note(refusalNotUnix, time.Now(), DefaultRefusalLogInterval); ok {
		s.logger.Warn("refusing connection: " + why.Error())
	}
	nc.Close()
}

// Keys of refusalLog other than user ids.
const (
	refusalNoCred  = -1 // no credentials (checkPeer)
	refusalNotUnix = -2 // not a Unix-domain socket (refuse)
)

// maxRefusalEntries bounds the refusal log's memory: beyond it, entries
// older than the interval are forgotten.
const maxRefusalEntries = 4096

// refusalLog rate-limits the refusal warnings: one line per user and
// interval, with the number of refusals not logged in between.
type refusalLog struct {
	mu    sync.Mutex
	users map[int]*refusal
}

type refusal struct {
	logged     time.Time // when a line was last written
	suppressed int       // refusals since then
}

// note records a refusal of uid at now and reports whether to log it and
// how many refusals of uid went unlogged before it.
func (r *refusalLog) note(uid int, now time.Time, every time.Duration) (log bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users == nil {
		r.users = make(map[int]*refusal)
	}
	e := r.users[uid]
	if e != nil && now.Sub(e.logged) < every {
		e.suppressed++
		return false, 0
	}
	if e == nil {
		if len(r.users) >= maxRefusalEntries {
			for u, old := range r.users {
				if now.Sub(old.logged) >= every {
					delete(r.users, u)
				}
			}
		}
		e = &refusal{}
		r.users[uid] = e
	}
	suppressed, e.suppressed, e.logged = e.suppressed, 0, now
	return true, suppressed
}
