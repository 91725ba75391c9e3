package attr

import (
	"bufio"
	"encoding/base64"
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
	// DefaultMaxAttrs bounds the attributes of one list.
	DefaultMaxAttrs = 1024
	// DefaultMaxTable bounds the entries of one table (ATTR_HASH_LIMIT).
	DefaultMaxTable = 1024
)

// Limits bound what a Decoder reads. They are applied while reading, so a
// hostile peer cannot make the decoder buffer more than MaxString bytes. A
// zero field means the default.
type Limits struct {
	MaxString int // bytes in one name or value
	MaxAttrs  int // attributes (names read) in one list
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
// never reads past the end of the list it was asked for, other than what
// the bufio.Reader itself buffers. It is not safe for concurrent use.
type Decoder struct {
	r   *bufio.Reader
	f   Format
	lim Limits
	buf []byte

	// Stream names the peer in scanner messages, as Postfix's VSTREAM_PATH
	// does (scache(8) uses "scache socket"). Empty means "input".
	Stream string
	// Warn, if not nil, receives the non-fatal warnings Postfix's scanner
	// logs (missing and unexpected attributes), worded as Postfix words them.
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

func (d *Decoder) warn(msg string) {
	if d.Warn != nil {
		d.Warn(msg)
	}
}

const (
	ctxName  = "input attribute name"
	ctxValue = "input attribute value"
)

// readRaw reads bytes up to and excluding the first byte in delims. It
// returns the delimiter found. The returned slice aliases d.buf.
func (d *Decoder) readRaw(delims string, ctx string) ([]byte, byte, error) {
	d.buf = d.buf[:0]
	for {
		var chunk []byte
		var err error
		if len(delims) == 1 {
			chunk, err = d.r.ReadSlice(delims[0])
		} else {
			chunk, err = d.readSliceAny(delims)
		}
		if err == nil {
			tok := chunk[:len(chunk)-1]
			if len(d.buf)+len(tok) > d.lim.MaxString {
				return nil, 0, d.errorf(ErrTooLong, "string length exceeds limit %d in input from %s while reading %s", d.lim.MaxString, d.stream(), ctx)
			}
			if len(d.buf) == 0 {
				return tok, chunk[len(chunk)-1], nil
			}
			d.buf = append(d.buf, tok...)
			return d.buf, chunk[len(chunk)-1], nil
		}
		if len(d.buf)+len(chunk) > d.lim.MaxString {
			return nil, 0, d.errorf(ErrTooLong, "string length exceeds limit %d in input from %s while reading %s", d.lim.MaxString, d.stream(), ctx)
		}
		d.buf = append(d.buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(d.buf) > 0 {
			return nil, 0, &ScanError{Msg: "unexpected end-of-input from " + d.stream() + " while reading " + ctx, Err: unexpected(err)}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, 0, &ScanError{Msg: "timeout on " + d.stream() + " while reading " + ctx, Err: err}
		}
		return nil, 0, &ScanError{Msg: "premature end-of-input on " + d.stream() + " while reading " + ctx, Err: unexpected(err)}
	}
}

// unexpected turns a plain EOF inside a list into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readSliceAny is bufio.Reader.ReadSlice for a set of delimiters.
func (d *Decoder) readSliceAny(delims string) ([]byte, error) {
	n := 0
	for {
		b, err := d.r.Peek(n + 1)
		if err != nil {
			// Peek returns what it has; consume it like ReadSlice does.
			if len(b) > n {
				n = len(b)
			}
			out, _ := d.r.Peek(n)
			out = append([]byte(nil), out...)
			d.r.Discard(n)
			if errors.Is(err, bufio.ErrBufferFull) {
				return out, bufio.ErrBufferFull
			}
			return out, err
		}
		c := b[n]
		n++
		for i := 0; i < len(delims); i++ {
			if c == delims[i] {
				out := append([]byte(nil), b[:n]...)
				d.r.Discard(n)
				return out, nil
			}
		}
	}
}

func (d *Decoder) errorf(cause error, format string, args ...any) *ScanError {
	return &ScanError{Msg: fmt.Sprintf(format, args...), Err: cause}
}

// readName reads one attribute name. hasValue reports whether a value
// follows (always true in Format0; in the other formats it depends on the
// separator). An empty name is the list terminator.
func (d *Decoder) readName() (name string, hasValue bool, err error) {
	switch d.f {
	case Format0:
		b, _, err := d.readRaw("\x00", ctxName)
		if err != nil {
			return "", false, err
		}
		return string(b), true, nil
	case FormatBase64:
		b, delim, err := d.readRaw(":\n", ctxName)
		if err != nil {
			return "", false, err
		}
		s, err := d.b64(b, ctxName)
		return s, delim == ':', err
	default:
		b, delim, err := d.readRaw("=\n", ctxName)
		if err != nil {
			return "", false, err
		}
		return string(b), delim == '=', nil
	}
}

// readValue reads one attribute value. sep reports, for FormatBase64, that
// the value ended with ':' instead of a newline (a second value follows).
func (d *Decoder) readValue() (value string, sep bool, err error) {
	switch d.f {
	case Format0:
		b, _, err := d.readRaw("\x00", ctxValue)
		if err != nil {
			return "", false, err
		}
		return string(b), false, nil
	case FormatBase64:
		b, delim, err := d.readRaw(":\n", ctxValue)
		if err != nil {
			return "", false, err
		}
		s, err := d.b64(b, ctxValue)
		return s, delim == ':', err
	default:
		b, _, err := d.readRaw("\n", ctxValue)
		if err != nil {
			return "", false, err
		}
		return string(b), false, nil
	}
}

func (d *Decoder) b64(b []byte, ctx string) (string, error) {
	out, err := base64.StdEncoding.AppendDecode(nil, b)
	if err != nil {
		return "", d.errorf(ErrMalformedData, "malformed base64 data from %s while reading %s: %s", d.stream(), ctx, string(b))
	}
	return string(out), nil
}

// isMarker reports whether name is the group marker m. The plain format
// writes markers with their C string NUL, and Postfix compares with strcmp.
func isMarker(name, m string) bool {
	return name == m || (len(name) > len(m) && name[:len(m)] == m && name[len(m)] == 0)
}

// Decode reads one complete list, terminator included, and nothing after
// it. A name "{" opens a table that runs to the name "}"; tables do not
// nest. At a clean end of stream (no byte of a new list read) it returns
// io.EOF; a list cut short gives an error that matches
// io.ErrUnexpectedEOF. Other errors are *ScanError values wrapping
// ErrTooLong, ErrTooMany, ErrMalformed, ErrMalformedData or the reader's
// error.
func (d *Decoder) Decode() (List, error) {
	var l List
	if _, err := d.r.Peek(1); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, &ScanError{Msg: "premature end-of-input on " + d.stream() + " while reading " + ctxName, Err: err}
	}
	var table *Attr
	names := 0
	for {
		name, hasValue, err := d.readName()
		if err != nil {
			return nil, err
		}
		if names++; names > d.lim.MaxAttrs {
			return nil, d.errorf(ErrTooMany, "attribute count exceeds limit %d in input from %s", d.lim.MaxAttrs, d.stream())
		}
		switch {
		case name == "" && table == nil:
			return l, nil
		case name == "":
			return nil, d.errorf(ErrMalformed, "unterminated table in input from %s", d.stream())
		case isMarker(name, NameOpen) && table == nil:
			l = append(l, Table(nil))
			table = &l[len(l)-1]
			continue
		case isMarker(name, NameOpen):
			return nil, d.errorf(ErrMalformed, "nested table in input from %s", d.stream())
		case isMarker(name, NameClose) && table != nil:
			table = nil
			continue
		}
		if !hasValue {
			return nil, d.errorf(ErrMalformed, "missing value for attribute %s from %s", name, d.stream())
		}
		value, sep, err := d.readValue()
		if err != nil {
			return nil, err
		}
		if sep {
			return nil, d.errorf(ErrMalformed, "multiple values for attribute %s from %s", name, d.stream())
		}
		if table != nil {
			if len(table.Table) >= d.lim.MaxTable {
				return nil, d.errorf(ErrTooMany, "attribute count exceeds limit %d in input from %s", d.lim.MaxTable, d.stream())
			}
			table.Table = append(table.Table, Str(name, value))
			continue
		}
		l = append(l, Str(name, value))
	}
}
