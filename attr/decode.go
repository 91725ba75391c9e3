package attr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Default limits, used where a Limits field is zero.
const (
	// DefaultMaxString bounds one name or value. Postfix enforces no bound
	// (its manual pages mention 4 x line_length_limit); real labels and
	// properties are well under 2 KiB.
	DefaultMaxString = 1 << 20
	// DefaultMaxAttrs bounds the names read for one list (or one Scan call).
	DefaultMaxAttrs = 1024
	// DefaultMaxTable bounds the entries of one table: ATTR_HASH_LIMIT.
	DefaultMaxTable = 1024
)

// Limits bound what a Decoder reads. They are applied while reading, so a
// hostile peer cannot make the decoder buffer more than MaxString bytes for
// one name or value. A zero or negative field means the default.
type Limits struct {
	MaxString int // bytes in one name or value, before base64 decoding
	MaxAttrs  int // names read for one list (Decode) or one Scan call
	MaxTable  int // entries in one table
}

func (l Limits) withDefaults() Limits {
	if l.MaxString <= 0 {
		l.MaxString = DefaultMaxString
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultMaxAttrs
	}
	if l.MaxTable <= 0 {
		l.MaxTable = DefaultMaxTable
	}
	return l
}

// Decoder reads attribute lists from a caller-owned buffered reader. It
// never consumes bytes past the end of the list it was asked for (the
// bufio.Reader may of course have read them ahead; see [Decoder.Buffered]).
// After an error other than a clean io.EOF the position in the stream is
// unspecified and the connection should be dropped, as Postfix does.
// A Decoder is not safe for concurrent use.
type Decoder struct {
	r   *bufio.Reader
	f   Format
	lim Limits

	tok   []byte // a token that spans more than one buffer fill
	name  []byte // the current name (Scan), decoded
	val   []byte // a decoded base64 value
	arena []byte // Decode: every name and value of the list
	spans []span // Decode: where they are in arena

	// Stream names the peer in scanner messages, as Postfix's VSTREAM_PATH
	// does (scache(8) uses "scache socket"). Empty means "input".
	Stream string
	// Warn, if not nil, receives the non-fatal warnings Postfix's scanner
	// logs (missing, unexpected and duplicate attributes, table overflow),
	// worded as Postfix words them.
	Warn func(msg string)
}

// NewDecoder returns a decoder reading format f from r with limits lim.
func NewDecoder(r *bufio.Reader, f Format, lim Limits) *Decoder {
	return &Decoder{r: r, f: f, lim: lim.withDefaults()}
}

// Buffered returns the number of bytes read from the connection but not yet
// consumed. It must be zero before a descriptor is received on the same
// socket.
func (d *Decoder) Buffered() int { return d.r.Buffered() }

func (d *Decoder) stream() string {
	if d.Stream == "" {
		return "input"
	}
	return d.Stream
}

func (d *Decoder) warnf(format string, args ...any) {
	if d.Warn != nil {
		d.Warn(fmt.Sprintf(format, args...))
	}
}

func (d *Decoder) errorf(cause error, format string, args ...any) *ScanError {
	return &ScanError{Msg: fmt.Sprintf(format, args...), Err: cause}
}

const (
	ctxName  = "input attribute name"
	ctxValue = "input attribute value"
)

// start waits for the first byte of a list. Like Postfix's scanners it
// reports any failure there without a message: the reader's error is
// returned as is (io.EOF at a clean end of stream).
func (d *Decoder) start() error {
	_, err := d.r.Peek(1)
	return err
}

// token reads bytes up to the first a or b (pass a == b for one delimiter)
// and consumes the delimiter, which it returns. The token is valid until the
// next read. It never holds more than MaxString bytes.
func (d *Decoder) token(a, b byte, ctx string) ([]byte, byte, error) {
	d.tok = d.tok[:0]
	for {
		n := d.r.Buffered()
		if n == 0 {
			n = 1
		}
		buf, err := d.r.Peek(n)
		i := bytes.IndexByte(buf, a)
		if a != b {
			if j := bytes.IndexByte(buf, b); j >= 0 && (i < 0 || j < i) {
				i = j
			}
		}
		if i >= 0 {
			if len(d.tok)+i > d.lim.MaxString {
				return nil, 0, d.tooLong(ctx)
			}
			tok, delim := buf[:i], buf[i]
			if len(d.tok) > 0 {
				d.tok = append(d.tok, tok...)
				tok = d.tok
			}
			_, _ = d.r.Discard(i + 1) // cannot fail: the bytes are buffered
			return tok, delim, nil
		}
		if len(d.tok)+len(buf) > d.lim.MaxString {
			return nil, 0, d.tooLong(ctx)
		}
		d.tok = append(d.tok, buf...)
		_, _ = d.r.Discard(len(buf)) // cannot fail: buf is what is buffered
		if err != nil {
			return nil, 0, d.endError(err, ctx)
		}
	}
}

func (d *Decoder) tooLong(ctx string) error {
	// Postfix's wording for this check, which it compiles out.
	return d.errorf(ErrTooLong, "string length > %d characters from %s while reading %s", d.lim.MaxString, d.stream(), ctx)
}

// endError is the error for input that ends (or fails) inside a list, with
// d.tok holding what was read of the current string.
func (d *Decoder) endError(err error, ctx string) error {
	cause := err
	if errors.Is(err, io.EOF) {
		cause = io.ErrUnexpectedEOF
	}
	// vstring_get_null returns the last byte read when the string is cut
	// short, as a (signed, on amd64) char: a last byte 0xff reads as EOF.
	if d.f == Format0 && len(d.tok) > 0 && d.tok[len(d.tok)-1] != 0xff {
		return &ScanError{Msg: "unexpected end-of-input from " + d.stream() + " while reading " + ctx, Err: cause}
	}
	return d.prematureError(cause, ctx)
}

func (d *Decoder) prematureError(cause error, ctx string) error {
	what := "premature end-of-input"
	if errors.Is(cause, os.ErrDeadlineExceeded) {
		what = "timeout"
	}
	return &ScanError{Msg: what + " on " + d.stream() + " while reading " + ctx, Err: cause}
}

// readName reads one attribute name into d.name. hasValue reports that a
// value follows: always in Format0, after ':' (base64) or '=' (plain)
// otherwise.
func (d *Decoder) readName() (name []byte, hasValue bool, err error) {
	switch d.f {
	case Format0:
		tok, _, err := d.token(0, 0, ctxName)
		if err != nil {
			return nil, false, err
		}
		d.name = append(d.name[:0], tok...)
		return d.name, true, nil
	case FormatBase64:
		tok, delim, err := d.token(':', '\n', ctxName)
		if err != nil {
			return nil, false, err
		}
		var ok bool
		if d.name, ok = appendUnB64(d.name[:0], tok); !ok {
			return nil, false, d.malformed64(tok)
		}
		return d.name, delim == ':', nil
	default:
		tok, delim, err := d.token('=', '\n', ctxName)
		if err != nil {
			return nil, false, err
		}
		d.name = append(d.name[:0], tok...)
		return d.name, delim == '=', nil
	}
}

// readValue reads one attribute value. The result is valid until the next
// read. multiple reports, in the base64 format, that the value ended with
// ':' instead of a newline: another value follows.
func (d *Decoder) readValue() (value []byte, multiple bool, err error) {
	switch d.f {
	case Format0:
		tok, _, err := d.token(0, 0, ctxValue)
		return tok, false, err
	case FormatBase64:
		tok, delim, err := d.token(':', '\n', ctxValue)
		if err != nil {
			return nil, false, err
		}
		var ok bool
		if d.val, ok = appendUnB64(d.val[:0], tok); !ok {
			return nil, false, d.malformed64(tok)
		}
		return d.val, delim == ':', nil
	default:
		tok, _, err := d.token('\n', '\n', ctxValue)
		return tok, false, err
	}
}

func (d *Decoder) malformed64(tok []byte) error {
	return d.errorf(ErrMalformedData, "malformed base64 data from %s: %s", d.stream(), cTrunc(tok))
}

// isTerminator reports whether a name read with readName ends the list: an
// empty name, which in the base64 and plain formats must not be followed by
// a value.
func (d *Decoder) isTerminator(name []byte, hasValue bool) bool {
	return len(name) == 0 && (d.f == Format0 || !hasValue)
}

// isMarker reports whether name is the group marker m. In the base64 and
// plain formats a marker has no value. Postfix compares with strcmp, so the
// plain format's "{\0" (its encoder writes the C string's NUL) matches.
func (d *Decoder) isMarker(name []byte, hasValue bool, m string) bool {
	if d.f != Format0 && hasValue {
		return false
	}
	return string(cstr(name)) == m
}

// cstr returns b up to its first NUL byte: what C code sees of it.
func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// cTrunc formats b like C's "%.100s".
func cTrunc(b []byte) string {
	b = cstr(b)
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}

type spanKind uint8

const (
	spanAttr spanKind = iota
	spanOpen
	spanClose
)

// span locates one name and value in Decoder.arena.
type span struct {
	kind             spanKind
	name, value, end int
}

// Decode reads one complete list, terminator included, and nothing after
// it. Names and values are returned as read, bytes untouched.
//
// A name "{" (with no value, in the base64 and plain formats) opens a table
// that runs to the name "}"; inside a table "{" is an ordinary name, as in
// Postfix. Input that a [List] cannot represent is an error even where
// Postfix's scanner would skip it: a name without a value, a second value
// (base64), or a list terminator inside a table.
//
// At a clean end of stream, before any byte of a new list, Decode returns
// io.EOF (any other reader error there is returned as is). A list cut short
// gives a *ScanError matching io.ErrUnexpectedEOF, or the reader's error. The
// other errors are *ScanError values wrapping ErrTooLong, ErrTooMany,
// ErrMalformed or ErrMalformedData.
func (d *Decoder) Decode() (List, error) {
	if err := d.start(); err != nil {
		return nil, err
	}
	d.arena = d.arena[:0]
	d.spans = d.spans[:0]
	inTable, tableLen, top := false, 0, 0
	for names := 0; ; names++ {
		name, hasValue, err := d.readName()
		if err != nil {
			return nil, err
		}
		if d.isTerminator(name, hasValue) {
			if inTable {
				return nil, d.errorf(ErrMalformed, "missing attribute (any attribute name or '}') in input from %s", d.stream())
			}
			break
		}
		if names >= d.lim.MaxAttrs {
			return nil, d.errorf(ErrTooMany, "attribute count exceeds limit %d in input from %s", d.lim.MaxAttrs, d.stream())
		}
		switch {
		case !inTable && d.isMarker(name, hasValue, NameOpen):
			d.spans = append(d.spans, span{kind: spanOpen})
			inTable, tableLen = true, 0
			top++
			continue
		case inTable && d.isMarker(name, hasValue, NameClose):
			d.spans = append(d.spans, span{kind: spanClose})
			inTable = false
			continue
		case !hasValue:
			return nil, d.errorf(ErrMalformed, "missing value for string attribute %s from %s", cstr(name), d.stream())
		}
		s := span{name: len(d.arena)}
		d.arena = append(d.arena, name...)
		s.value = len(d.arena)
		value, multiple, err := d.readValue()
		if err != nil {
			return nil, err
		}
		if multiple {
			return nil, d.errorf(ErrMalformed, "multiple values for attribute %s from %s", cstr(d.arena[s.name:s.value]), d.stream())
		}
		d.arena = append(d.arena, value...)
		s.end = len(d.arena)
		if inTable {
			if tableLen++; tableLen > d.lim.MaxTable {
				return nil, d.errorf(ErrTooMany, "attribute count exceeds limit %d in input from %s", d.lim.MaxTable, d.stream())
			}
		} else {
			top++
		}
		d.spans = append(d.spans, s)
	}
	return d.build(top), nil
}

// build turns d.spans into a List. All names and values share one string,
// so a list costs a few allocations however many attributes it has.
func (d *Decoder) build(top int) List {
	all := string(d.arena)
	l := make(List, 0, top)
	var table *Attr
	for i, s := range d.spans {
		switch s.kind {
		case spanOpen:
			n := 0
			for _, t := range d.spans[i+1:] {
				if t.kind != spanAttr {
					break
				}
				n++
			}
			l = append(l, Attr{Kind: KindTable, Table: make(List, 0, n)})
			table = &l[len(l)-1]
		case spanClose:
			table = nil
		default:
			a := Attr{Name: all[s.name:s.value], Value: all[s.value:s.end]}
			if table != nil {
				table.Table = append(table.Table, a)
			} else {
				l = append(l, a)
			}
		}
	}
	return l
}
