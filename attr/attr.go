package attr

import "strconv"

// Format selects one of Postfix's three attribute encodings.
type Format int

const (
	// Format0 is the null-terminated encoding (attr_print0/attr_scan0),
	// Postfix's default: name NUL value NUL ... NUL.
	Format0 Format = iota
	// FormatBase64 is the base64 encoding (attr_print64/attr_scan64):
	// b64(name) ":" b64(value) "\n" ... "\n".
	FormatBase64
	// FormatPlain is the plain encoding (attr_print_plain/attr_scan_plain):
	// name "=" value "\n" ... "\n".
	FormatPlain
)

// String returns the Postfix name of the encoding.
func (f Format) String() string {
	switch f {
	case Format0:
		return "attr0"
	case FormatBase64:
		return "attr64"
	case FormatPlain:
		return "plain"
	}
	return "attr.Format(" + strconv.Itoa(int(f)) + ")"
}

// Kind tells an encoder how to write an attribute's value. Decoded
// attributes are always [KindStr] or [KindTable]: the wire carries no types.
type Kind uint8

const (
	// KindStr is a string, INT or LONG value written as is (ATTR_TYPE_STR).
	KindStr Kind = iota
	// KindData is binary data (ATTR_TYPE_DATA): Value holds the raw bytes
	// and the encoder writes them base64-encoded.
	KindData
	// KindBool is a boolean (ATTR_TYPE_BOOL): Value is "0" or "1"; the
	// plain encoder writes "false" or "true".
	KindBool
	// KindTable is a name-value table (ATTR_TYPE_HASH/NV) held in Table.
	KindTable
)

// Group markers that open and close a name-value table (ATTR_NAME_OPEN,
// ATTR_NAME_CLOSE).
const (
	NameOpen  = "{"
	NameClose = "}"
)

// Attr is one attribute. For a table (Kind == KindTable) Name and Value are
// unused and Table holds the entries; tables do not nest.
type Attr struct {
	Name  string
	Value string
	Kind  Kind
	Table List
}

// List is one attribute list in wire order. A name may repeat (save_dest
// carries two "label" attributes).
type List []Attr

// Get returns the value of the first attribute named name.
func (l List) Get(name string) (string, bool) {
	for _, a := range l {
		if a.Kind != KindTable && a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// Str returns a string attribute (SEND_ATTR_STR).
func Str(name, value string) Attr { return Attr{Name: name, Value: value} }

// Int returns an INT attribute written as Postfix writes a C int with "%u":
// negative values wrap to their unsigned 32-bit form (SEND_ATTR_INT).
func Int(name string, v int) Attr {
	return Attr{Name: name, Value: strconv.FormatUint(uint64(uint32(int32(v))), 10)}
}

// Long returns a LONG attribute written with "%lu" (SEND_ATTR_LONG).
func Long(name string, v int64) Attr {
	return Attr{Name: name, Value: strconv.FormatUint(uint64(v), 10)}
}

// Data returns a DATA attribute holding raw bytes (SEND_ATTR_DATA).
func Data(name string, b []byte) Attr { return Attr{Name: name, Value: string(b), Kind: KindData} }

// Bool returns a BOOL attribute (SEND_ATTR_BOOL, Postfix 3.12 and later).
func Bool(name string, v bool) Attr {
	if v {
		return Attr{Name: name, Value: "1", Kind: KindBool}
	}
	return Attr{Name: name, Value: "0", Kind: KindBool}
}

// Table returns a name-value table attribute (SEND_ATTR_HASH/NV). Entries
// are written in the order given.
func Table(entries List) Attr {
	if entries == nil {
		entries = List{}
	}
	return Attr{Kind: KindTable, Table: entries}
}

// DecodeData turns the value of a DATA attribute as read from the wire in
// format f back into raw bytes. In Format0 and FormatPlain the value is
// base64 text; in FormatBase64 the scanner already removed the one level of
// base64 and the value is returned unchanged. Decoding follows Postfix's
// base64_decode: the length must be a multiple of four and a '=' in the
// third or fourth place of a group ends the data (what follows is ignored).
func DecodeData(f Format, v string) ([]byte, error) {
	if f == FormatBase64 {
		return []byte(v), nil
	}
	b, ok := appendUnB64(make([]byte, 0, len(v)/4*3), v)
	if !ok {
		return nil, ErrMalformedData
	}
	return b, nil
}
