// Package scache is the vocabulary of Postfix's connection cache protocol,
// which goscache, a drop-in reimplementation of scache(8), speaks: reply
// statuses, request and attribute names, the errors of the protocol and
// of descriptor passing, and the replies of goscache's own read-only
// extension requests. The work is done in three packages, the three rooms
// Postfix has:
//
//   - [github.com/goscache/goscache/scache/cache]: the multi-session cache
//     of global/scache_multi.c: destination label -> endpoint bindings,
//     endpoint label -> cached sessions (descriptors), with per-entry
//     expiry. It knows nothing of the wire.
//   - [github.com/goscache/goscache/scache/server]: the server of
//     scache/scache.c: it serves the protocol on the listeners handed to
//     it, one goroutine per client, with Postfix's replies and warnings
//     for good and bad input alike, and logs the "statistics:" lines.
//   - [github.com/goscache/goscache/scache/client]: the client side, as
//     global/scache_clnt.c speaks it, handshakes included, plus the
//     extension requests.
//
// # Wire protocol
//
// Requests and replies are attribute lists in Postfix's null-terminated
// format (package attr). On accept the server announces
// protocol=connection_cache_protocol, as Postfix 3.6 and later do; Postfix
// 3.5 sends nothing before the first reply (Options.NoAnnouncement), and the
// Client accepts both. The requests are save_endp, find_endp,
// save_dest and find_dest ([ReqSaveEndp] ...); every reply starts with a
// [Status] ([StatusOK], [StatusBad], [StatusFail]).
//
// Descriptors travel as one 0x00 data byte plus one SCM_RIGHTS control
// message holding one descriptor (util/unix_send_fd.c). On Linux Postfix
// wraps every transfer in "dummy" records: for save_endp the server sends
// a dummy record before it receives the descriptor; for a find hit it
// sends the reply, reads the client's dummy, sends the descriptor and
// reads a second dummy. A descriptor is received only while nothing is
// buffered in user space, because a plain read of the byte that carries it
// would make the kernel drop the descriptor.
//
// Cached descriptors are held as plain ints and never modified: no
// O_NONBLOCK change, no shutdown(2), only close(2) of the server's copy.
//
// # Extensions
//
// goscache_stats ([ReqStats]) answers with the lifetime counters, the
// cache size, evictions, clients and request latency histograms
// ([ServerStats]); goscache_dump ([ReqDump]) with every binding and cached
// session ([Dump]). Postfix's scache answers both with status=1, which is
// how a client tells the two apart.
//
// # Differences from Postfix
//
// Clients are served concurrently, every complete request already
// buffered is answered (Postfix drops pipelined requests when it writes a
// reply), and descriptors received in excess are closed instead of leaked.
// Replies and warnings are otherwise Postfix's, including the odd ones:
// the value of an unexpected first attribute is parsed as the start of a
// new record, as in Postfix. scache/server/testdata/bad_input.json holds
// conversations recorded from the real scache(8) of Postfix 3.7.11 that
// the server's tests replay.
package scache
