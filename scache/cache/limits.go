package cache

import (
	"math"

	"golang.org/x/sys/unix"
)

// Descriptor budget: see DescriptorBudget.
const (
	// fdReserve is kept for everything but clients and cached sessions:
	// standard streams, master's pipes and status socket, listeners, the
	// log socket, the runtime's poller.
	fdReserve = 32
	// minConns and maxConns bound the default number of clients served at
	// once. Postfix's default_process_limit is 100; every smtp(8) and
	// lmtp(8) process holds one connection to the cache at most.
	minConns = 16
	maxConns = 1024
)

// DescriptorBudget splits a descriptor limit (RLIMIT_NOFILE) into the
// default number of clients a server serves at once and the default number
// of sessions its cache holds (Options.MaxSessions 0), so that a full cache never starves clients: a sixteenth
// of the limit goes to clients (at least 16, at most 1024), each of which
// may hold one descriptor in transit besides its socket (a save being
// received, a find being handed out), 32 are reserved for the process
// itself, and the rest, at least 1, to cached sessions. With 1024
// descriptors that is 64 clients and 864 sessions; with 20000, 1024
// clients and 17920 sessions.
func DescriptorBudget(nofile uint64) (maxClients, maxSessions int) {
	n := int64(min(nofile, math.MaxInt32))
	clients := min(max(n/16, minConns), maxConns)
	sessions := max(n-2*clients-fdReserve, 1)
	return int(clients), int(sessions)
}

// NoFileLimit returns the soft RLIMIT_NOFILE (Go raises it to the hard
// limit at startup), or 1024 when it cannot be read.
func NoFileLimit() uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	return lim.Cur
}
