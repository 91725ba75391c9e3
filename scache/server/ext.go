package server

// The read-only extension requests for the debug CLI (cmd/scachectl), as
// package scache defines them. They copy what they report under the cache
// lock before encoding it outside the lock, so a slow reader stalls only
// its own connection.

import (
	"time"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
)

// addExtHandlers adds the extension requests to a dispatch table.
func addExtHandlers(m map[string]handler) {
	m[scache.ReqStats] = (*conn).extStats
	m[scache.ReqDump] = (*conn).extDump
}

// extRequest reads the rest of an extension request, which has no
// parameters. Like Postfix's strict scans, an unexpected extra attribute
// is logged and tolerated. It reports false, after a status=1 reply, when
// the record could not be read.
func (c *conn) extRequest(req string) bool {
	if _, err := c.scan(attr.FlagStrict); err != nil {
		c.badRequest(req, replyStatusBad, err)
		return false
	}
	return true
}

func (c *conn) extStats() {
	if !c.extRequest(scache.ReqStats) {
		return
	}
	s := c.srv
	s.mu.Lock()
	clients := len(s.conns)
	s.mu.Unlock()
	st := scache.ServerStats{
		Time:          time.Now(),
		Totals:        s.stats.totals(),
		Size:          s.cache.Size(),
		Evictions:     s.cache.Evictions(),
		Clients:       clients,
		Refused:       s.refused.Load(),
		NonSockets:    s.cache.NonSockets(),
		LatencyBounds: scache.LatencyBounds(),
		Latency:       s.latency.snapshot(),
		Build:         s.opts.Build,
	}
	c.reply(st.MarshalAttrs())
}

// extDump answers with a header record, one record per destination
// binding and one per cached session. The snapshot is a copy taken under
// the cache lock; the peer addresses are looked up and the records written
// after the lock is released.
func (c *conn) extDump() {
	if !c.extRequest(scache.ReqDump) {
		return
	}
	snap := c.srv.cache.Snapshot()
	now := time.Now()
	bindings, sessions := 0, 0
	for _, d := range snap.Dests {
		bindings += len(d.Bindings)
	}
	for _, e := range snap.Endps {
		sessions += len(e.Sessions)
	}
	c.dropRest()
	var buf []byte
	buf = attr.Append(buf, attr.List{
		attr.Int(scache.AttrStatus, int(scache.StatusOK)),
		attr.Str(scache.AttrServer, scache.ServerName),
		attr.Long(scache.AttrTime, now.UnixNano()),
		attr.Int(scache.AttrBindings, bindings),
		attr.Int(scache.AttrSessions, sessions),
	})
	for _, d := range snap.Dests {
		for _, b := range d.Bindings {
			buf = attr.Append(buf, attr.List{
				attr.Str(scache.AttrDestination, d.Label),
				attr.Str(scache.AttrEndpoint, b.EndpLabel),
				attr.Str(scache.AttrProp, b.DestProp),
				attr.Long(scache.AttrCreated, b.Created.UnixNano()),
				attr.Long(scache.AttrExpires, b.Expires.UnixNano()),
			})
			if !c.extWrite(&buf) {
				return
			}
		}
	}
	for _, e := range snap.Endps {
		for _, s := range e.Sessions {
			buf = attr.Append(buf, attr.List{
				attr.Str(scache.AttrEndpoint, e.Label),
				attr.Int(scache.AttrFD, s.FD),
				attr.Str(scache.AttrProp, s.EndpProp),
				attr.Long(scache.AttrCreated, s.Created.UnixNano()),
				attr.Long(scache.AttrExpires, s.Expires.UnixNano()),
				attr.Str(scache.AttrPeer, scache.PeerAddr(s.FD)),
			})
			if !c.extWrite(&buf) {
				return
			}
		}
	}
	if len(buf) > 0 {
		if _, err := c.bw.Write(buf); err != nil {
			c.broken = true
			return
		}
	}
	if err := c.bw.Flush(); err != nil {
		c.log.Debug("write reply", "err", err)
		c.broken = true
	}
}

// extWrite hands the records gathered in buf to the connection's writer
// once there are enough of them, and reports false after a write error.
func (c *conn) extWrite(buf *[]byte) bool {
	if len(*buf) < 32<<10 {
		return true
	}
	_, err := c.bw.Write(*buf)
	*buf = (*buf)[:0]
	if err != nil {
		c.log.Debug("write reply", "err", err)
		c.broken = true
		return false
	}
	return true
}
