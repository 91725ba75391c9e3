package scache

import "strconv"

// Status is the status attribute that starts every reply (global/scache.h).
type Status int

// Postfix's reply statuses.
const (
	StatusOK   Status = 0 // SCACHE_STAT_OK: the request succeeded
	StatusBad  Status = 1 // SCACHE_STAT_BAD: the request could not be parsed or was invalid
	StatusFail Status = 2 // SCACHE_STAT_FAIL: nothing cached under the label, or no descriptor arrived
)

// String returns "ok", "bad" or "fail", or the number for another value.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusBad:
		return "bad"
	case StatusFail:
		return "fail"
	}
	return strconv.Itoa(int(s))
}

// Request names (global/scache.h).
const (
	ReqSaveEndp = "save_endp" // SCACHE_REQ_SAVE_ENDP
	ReqFindEndp = "find_endp" // SCACHE_REQ_FIND_ENDP
	ReqSaveDest = "save_dest" // SCACHE_REQ_SAVE_DEST
	ReqFindDest = "find_dest" // SCACHE_REQ_FIND_DEST
)

// Attribute names (global/mail_proto.h).
const (
	AttrReq      = "request"  // MAIL_ATTR_REQ
	AttrTTL      = "ttl"      // MAIL_ATTR_TTL
	AttrLabel    = "label"    // MAIL_ATTR_LABEL
	AttrProp     = "property" // MAIL_ATTR_PROP
	AttrStatus   = "status"   // MAIL_ATTR_STATUS
	AttrDummy    = "dummy"    // MAIL_ATTR_DUMMY
	AttrProtocol = "protocol" // MAIL_ATTR_PROTO
)

// ProtocolName is the value of the announcement's protocol attribute
// (MAIL_ATTR_PROTO_SCACHE).
const ProtocolName = "connection_cache_protocol"

// Errors of the protocol and of descriptor passing, returned by the server
// and the client alike; test them with errors.Is. They are constants, so
// that no importer can change them.
const (
	// ErrNoDescriptor means a descriptor message carried no descriptor, or
	// the peer closed the connection where a descriptor was due.
	ErrNoDescriptor sentinelError = "scache: no descriptor received"
	// ErrTooManyDescriptors means a descriptor message carried more than
	// one descriptor, or the kernel truncated its control data
	// (MSG_CTRUNC). Every descriptor received was closed.
	ErrTooManyDescriptors sentinelError = "scache: more than one descriptor received"
	// ErrDescriptorDropped means a descriptor was sent but the kernel did
	// not install it in this process, usually because the process is out
	// of descriptors; the error then also wraps syscall.EMFILE (or
	// ENFILE, when the whole system is).
	ErrDescriptorDropped sentinelError = "scache: descriptor dropped on receipt"
	// ErrBuffered means input was already buffered where a descriptor was
	// due, so the byte carrying it may have been read as data.
	ErrBuffered sentinelError = "scache: data buffered before a descriptor"
	// ErrProtocol means a peer's reply did not have the attributes the
	// protocol requires.
	ErrProtocol sentinelError = "scache: protocol error"
)

// sentinelError is the type of the package's error constants.
type sentinelError string

func (e sentinelError) Error() string { return string(e) }
