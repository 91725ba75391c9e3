package attr

import "bufio"

// Encoder writes attribute lists to a caller-owned buffered writer.
// It is not safe for concurrent use. Like Postfix's printers it writes bytes
// as given: the caller keeps out what a format cannot carry (a NUL in the
// null format, an empty name there, which reads as the terminator; '=' or a
// newline in plain names, a newline in plain values; a table entry named
// "}"). Whatever Decode returned, Encode writes back so that Decode reads it
// equal.
type Encoder struct {
	w   *bufio.Writer
	f   Format
	buf []byte
}

// NewEncoder returns an encoder writing format f to w.
func NewEncoder(w *bufio.Writer, f Format) *Encoder { return &Encoder{w: w, f: f} }

// Encode writes l followed by the list terminator and flushes the writer.
func (e *Encoder) Encode(l List) error {
	e.buf = AppendFormat(e.buf[:0], e.f, l)
	if _, err := e.w.Write(e.buf); err != nil {
		return err
	}
	return e.w.Flush()
}

// EncodeMore writes l without a terminator and without flushing, like
// Postfix's ATTR_FLAG_MORE: the caller appends more attributes to the same
// list with further calls and ends it with Encode.
func (e *Encoder) EncodeMore(l List) error {
	e.buf = appendAttrs(e.buf[:0], e.f, l)
	_, err := e.w.Write(e.buf)
	return err
}

// Append appends the Format0 encoding of l, terminator included, to dst.
func Append(dst []byte, l List) []byte { return AppendFormat(dst, Format0, l) }

// AppendFormat appends the encoding of l in format f, terminator included,
// to dst.
func AppendFormat(dst []byte, f Format, l List) []byte {
	dst = appendAttrs(dst, f, l)
	switch f {
	case Format0:
		return append(dst, 0)
	default:
		return append(dst, '\n')
	}
}

func appendAttrs(dst []byte, f Format, l List) []byte {
	for _, a := range l {
		if a.Kind == KindTable {
			dst = appendMarker(dst, f, NameOpen)
			for _, t := range a.Table {
				dst = appendSimple(dst, f, t)
			}
			dst = appendMarker(dst, f, NameClose)
			continue
		}
		dst = appendSimple(dst, f, a)
	}
	return dst
}

func appendMarker(dst []byte, f Format, m string) []byte {
	switch f {
	case Format0:
		dst = append(dst, m...)
		return append(dst, 0)
	case FormatBase64:
		dst = appendB64(dst, m)
		return append(dst, '\n')
	default:
		// attr_print_plain writes the marker with its C string NUL.
		dst = append(dst, m...)
		return append(dst, 0, '\n')
	}
}

func appendSimple(dst []byte, f Format, a Attr) []byte {
	v := a.Value
	if a.Kind == KindBool && f == FormatPlain {
		if v == "1" {
			v = "true"
		} else {
			v = "false"
		}
	}
	// DATA is base64 text inside the null and plain formats; the base64
	// format encodes it once, like any other value.
	data := a.Kind == KindData && f != FormatBase64
	switch f {
	case Format0:
		dst = append(dst, a.Name...)
		dst = append(dst, 0)
	case FormatBase64:
		dst = appendB64(dst, a.Name)
		dst = append(dst, ':')
		return append(appendB64(dst, v), '\n')
	default:
		dst = append(dst, a.Name...)
		dst = append(dst, '=')
	}
	if data {
		dst = appendB64(dst, v)
	} else {
		dst = append(dst, v...)
	}
	if f == Format0 {
		return append(dst, 0)
	}
	return append(dst, '\n')
}
