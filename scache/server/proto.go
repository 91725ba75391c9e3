package server

import (
	"fmt"
	"time"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/internal/errs"
)

// streamName is how scache(8) names a client stream in scanner warnings:
// "<service> socket", after multi_server.c.
const streamName = "scache socket"

// ErrServerClosed is returned by Serve after Shutdown or Close, and by a
// second Shutdown or Close. It is a constant, so that no importer can
// change it.
const ErrServerClosed serverError = "scache: server closed"

// serverError is the type of ErrServerClosed.
type serverError string

func (e serverError) Error() string { return string(e) }

// announcement is the record the server writes as soon as it accepts a
// connection (scache_post_accept).
var announcement = attr.List{attr.Str(scache.AttrProtocol, scache.ProtocolName)}

// Replies, as scache.c prints them.
var (
	replyDummy       = attr.List{attr.Str(scache.AttrDummy, "")}
	replyStatusOK    = attr.List{attr.Int(scache.AttrStatus, int(scache.StatusOK))}
	replyStatusBad   = attr.List{attr.Int(scache.AttrStatus, int(scache.StatusBad))}
	replyStatusFail  = attr.List{attr.Int(scache.AttrStatus, int(scache.StatusFail))}
	replyFindEndpBad = attr.List{attr.Int(scache.AttrStatus, int(scache.StatusBad)), attr.Str(scache.AttrProp, "")}
	replyFindEndpMis = attr.List{attr.Int(scache.AttrStatus, int(scache.StatusFail)), attr.Str(scache.AttrProp, "")}
	replyFindDestBad = attr.List{attr.Int(scache.AttrStatus, int(scache.StatusBad)), attr.Str(scache.AttrProp, ""), attr.Str(scache.AttrProp, "")}
	replyFindDestMis = attr.List{attr.Int(scache.AttrStatus, int(scache.StatusFail)), attr.Str(scache.AttrProp, ""), attr.Str(scache.AttrProp, "")}
)

// handler serves one request whose request attribute has been read; the
// rest of the record is still unread in c's decoder.
type handler func(c *conn)

// coreHandlers returns the dispatch table of the four scache(8) requests.
// New adds the extension requests (ext.go) to the table it builds.
func coreHandlers() map[string]handler {
	return map[string]handler{
		scache.ReqSaveEndp: (*conn).saveEndp,
		scache.ReqFindEndp: (*conn).findEndp,
		scache.ReqSaveDest: (*conn).saveDest,
		scache.ReqFindDest: (*conn).findDest,
	}
}

// ttlDuration turns a ttl from the wire into a duration clamped to the
// server's limit. The caller has rejected ttl <= 0.
func (s *Server) ttlDuration(ttl int) time.Duration {
	d := time.Duration(ttl) * time.Second
	if d > s.opts.TTLLimit {
		d = s.opts.TTLLimit
	}
	return d
}

// badRequest logs Postfix's warning for a request that failed to parse and
// sends the BAD reply of that request.
func (c *conn) badRequest(service string, reply attr.List, err error) {
	c.srv.logger.Warn(service + ": bad or missing request parameter")
	if fatal(err) {
		c.broken = true
	}
	c.reply(reply)
}

// saveEndp serves save_endp (scache_save_endp_service): the ttl is
// validated before the dummy record is sent; the descriptor then arrives
// as a separate message and goes to the cache.
func (c *conn) saveEndp() {
	const service = "scache_save_endp_service"
	n, err := c.scan(attr.FlagStrict, c.itSaveEndp...)
	ttl := c.ttl
	if err != nil || n != 3 || ttl <= 0 {
		c.badRequest(service, replyStatusBad, err)
		return
	}
	if !c.reply(replyDummy) {
		return
	}
	fd, err := c.recvFD()
	if err != nil {
		c.srv.logger.Warn(service + ": unable to receive file descriptor: " + errs.Text(err))
		c.reply(replyStatusFail)
		return
	}
	// The label and property are not touched by recvFD: they still hold
	// the request's values. The cache copies what it keeps.
	c.srv.cache.SaveEndp(transient(c.label), transient(c.prop), fd, c.srv.ttlDuration(ttl))
	if c.debug() {
		c.log.Debug("saved endpoint", "label", string(c.label), "ttl", ttl, "fd", fd)
	}
	c.srv.stats.savedEndp(c.srv.cache.Size()) // before the reply, like the lookup counts
	c.reply(replyStatusOK)
}

// recvFD receives the descriptor of a save_endp request. Nothing may be
// buffered: the byte that carries the descriptor must reach recvmsg.
func (c *conn) recvFD() (int, error) {
	if n := c.br.Buffered(); n != 0 {
		return -1, fmt.Errorf("%w (%d bytes)", scache.ErrBuffered, n)
	}
	c.dl.armRead(c.srv.opts.IPCTimeout)
	return c.rio.recvFD(c.oob, c.fds[:0])
}

// saveDest serves save_dest (scache_save_dest_service).
func (c *conn) saveDest() {
	const service = "scache_save_dest_service"
	n, err := c.scan(attr.FlagStrict, c.itSaveDest...)
	ttl := c.ttl
	if err != nil || n != 4 || ttl <= 0 {
		c.badRequest(service, replyStatusBad, err)
		return
	}
	c.srv.cache.SaveDest(transient(c.label), transient(c.prop), transient(c.label2), c.srv.ttlDuration(ttl))
	if c.debug() {
		c.log.Debug("saved destination", "label", string(c.label), "endpoint", string(c.label2), "ttl", ttl)
	}
	c.srv.stats.savedDest(c.srv.cache.Size()) // before the reply, like the lookup counts
	c.reply(replyStatusOK)
}

// findEndp serves find_endp (scache_find_endp_service).
func (c *conn) findEndp() {
	const service = "scache_find_endp_service"
	n, err := c.scan(attr.FlagStrict, c.itLabel...)
	if err != nil || n != 1 {
		c.badRequest(service, replyFindEndpBad, err)
		return
	}
	fd, prop, ok := c.srv.cache.FindEndp(transient(c.label))
	c.lookedUp(false, ok, fd)
	if !ok {
		c.reply(replyFindEndpMis)
		return
	}
	c.hit[0], c.hit[1] = attr.Int(scache.AttrStatus, int(scache.StatusOK)), attr.Str(scache.AttrProp, prop)
	c.handOut(service, fd, c.hit[:2])
}

// lookedUp traces (under -v) and counts the outcome of a find of the
// current label by destination (dest) or endpoint. It runs before the
// reply, so a client that saw the reply sees the count; a hit counts even
// if the hand-out then fails, as in Postfix.
func (c *conn) lookedUp(dest, hit bool, fd int) {
	if dest {
		c.srv.stats.destLookup(hit)
	} else {
		c.srv.stats.endpLookup(hit)
	}
	if !c.debug() {
		return
	}
	what := "endpoint"
	if dest {
		what = "destination"
	}
	if hit {
		c.log.Debug(what+" hit", "label", string(c.label), "fd", fd)
	} else {
		c.log.Debug(what+" miss", "label", string(c.label))
	}
}

// findDest serves find_dest (scache_find_dest_service).
func (c *conn) findDest() {
	const service = "scache_find_dest_service"
	n, err := c.scan(attr.FlagStrict, c.itLabel...)
	if err != nil || n != 1 {
		c.badRequest(service, replyFindDestBad, err)
		return
	}
	fd, destProp, endpProp, ok := c.srv.cache.FindDest(transient(c.label))
	c.lookedUp(true, ok, fd)
	if !ok {
		c.reply(replyFindDestMis)
		return
	}
	c.hit[0], c.hit[1], c.hit[2] = attr.Int(scache.AttrStatus, int(scache.StatusOK)), attr.Str(scache.AttrProp, destProp), attr.Str(scache.AttrProp, endpProp)
	c.handOut(service, fd, c.hit[:3])
}

// handOut sends a find hit: the reply, the client's dummy, the descriptor,
// the client's second dummy. fd is closed in every case.
func (c *conn) handOut(service string, fd int, reply attr.List) {
	err := c.send(reply)
	if err == nil {
		err = c.readDummy()
	}
	if err == nil {
		if err = c.sendFD(fd); err != nil {
			c.broken = true
		}
	}
	if err == nil {
		err = c.readDummy()
	}
	if err != nil {
		c.srv.logger.Warn(service + ": cannot send file descriptor: " + errs.Text(err))
	}
	if cerr := closeRaw(fd); cerr != nil {
		c.srv.logger.Warn(fmt.Sprintf("close(%d): %s", fd, errs.Text(cerr)))
	}
	c.hit = [3]attr.Attr{} // the cache's strings: not kept past the request
}

// sendFD sends fd to the client, under ipc_timeout.
func (c *conn) sendFD(fd int) error {
	c.dl.armWrite(c.srv.opts.IPCTimeout)
	return c.rio.sendFD(fd, c.oob)
}

// readDummy reads a record that must be exactly [dummy=...].
func (c *conn) readDummy() error {
	n, err := c.scan(attr.FlagStrict, c.itDummy...)
	if fatal(err) {
		c.broken = true
	}
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%w: no dummy record", scache.ErrProtocol)
	}
	return nil
}
