package attr

import (
	"fmt"
	"io"
)

// Flags select the scanner rules of Postfix's attr_scan (ATTR_FLAG_*).
type Flags uint8

const (
	// FlagMissing logs a warning when a wanted attribute is missing
	// (ATTR_FLAG_MISSING).
	FlagMissing Flags = 1 << iota
	// FlagExtra stops at, and logs, an attribute that is not the one wanted
	// (ATTR_FLAG_EXTRA). Without it such attributes are skipped.
	FlagExtra
	// FlagMore stops after the last wanted item without reading the list
	// terminator, so a later Scan continues the same list (ATTR_FLAG_MORE).
	FlagMore

	// FlagNone is ATTR_FLAG_NONE.
	FlagNone Flags = 0
	// FlagStrict is ATTR_FLAG_STRICT: FlagMissing|FlagExtra.
	FlagStrict = FlagMissing | FlagExtra
)

type itemType uint8

const (
	itemStr itemType = iota
	itemInt
	itemLong
	itemData
	itemBool
	itemStrEq
	itemTable
)

// Item is one wanted attribute of a Scan, like an entry of the argument list
// of Postfix's attr_scan (RECV_ATTR_STR, RECV_ATTR_INT, ...). Build items
// with the Want functions.
type Item struct {
	typ   itemType
	name  string
	str   *string
	i32   *int
	i64   *int64
	bytes *[]byte
	b     *bool
	table *List
}

// WantStr wants a string attribute stored into p (RECV_ATTR_STR).
func WantStr(name string, p *string) Item { return Item{typ: itemStr, name: name, str: p} }

// WantInt wants an INT attribute (RECV_ATTR_INT). The value is parsed with
// ParseUint32 and stored into p the way C stores it into an int: values
// from 2^31 up come out negative.
func WantInt(name string, p *int) Item { return Item{typ: itemInt, name: name, i32: p} }

// WantLong wants a LONG attribute (RECV_ATTR_LONG), parsed with ParseUint64
// and stored as a C long.
func WantLong(name string, p *int64) Item { return Item{typ: itemLong, name: name, i64: p} }

// WantData wants a DATA attribute, base64-decoded into p (RECV_ATTR_DATA).
func WantData(name string, p *[]byte) Item { return Item{typ: itemData, name: name, bytes: p} }

// WantBool wants a BOOL attribute (RECV_ATTR_BOOL).
func WantBool(name string, p *bool) Item { return Item{typ: itemBool, name: name, b: p} }

// WantStrEq wants an attribute whose value must equal want (RECV_ATTR_STREQ).
// A match does not count toward Scan's result.
func WantStrEq(name, want string) Item { return Item{typ: itemStrEq, name: name, str: &want} }

// WantTable wants a name-value table (RECV_ATTR_HASH). If the input does not
// open a table with "{", every remaining attribute up to the terminator goes
// into it, so it must be the last item. Each entry counts as one conversion.
func WantTable(p *List) Item { return Item{typ: itemTable, table: p} }

// Scan reads the attributes named by items from the current list with
// Postfix's attr_scan rules and returns the number of conversions, counted
// as Postfix counts them:
//
//   - At a clean end of stream before the first byte it returns (0, io.EOF).
//     (Postfix returns 0 there.)
//   - A terminator before all items were found returns the count so far and
//     a nil error; with FlagMissing, Warn gets "missing attribute NAME in
//     input from STREAM".
//   - An attribute other than the one wanted is skipped, or, with
//     FlagExtra, reported to Warn as "unexpected attribute NAME from STREAM
//     (expecting: WANTED)" and the count so far is returned with its value
//     left unread, as Postfix leaves it.
//   - After the last item the terminator is read (unless FlagMore); an
//     attribute met instead is handled as above with the wanted name
//     "(list terminator)".
//   - Malformed values, a STREQ mismatch, limits, and end of input or a
//     timeout inside the list return a *ScanError (Postfix's -1) whose Msg
//     is Postfix's log text.
func (d *Decoder) Scan(flags Flags, items ...Item) (int, error) {
	if _, err := d.r.Peek(1); err != nil {
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, &ScanError{Msg: "premature end-of-input on " + d.stream() + " while reading " + ctxName, Err: err}
	}
	n := 0
	names := 0
	for i := 0; ; i++ {
		var it *Item
		wanted := "(list terminator)"
		if i < len(items) {
			it = &items[i]
			wanted = it.name
			if it.typ == itemTable {
				wanted = "(any attribute name or list terminator)"
			}
		} else if flags&FlagMore != 0 {
			return n, nil
		}
		// Locate the next attribute of interest.
		var name string
		var hasValue bool
		for {
			var err error
			name, hasValue, err = d.readName()
			if err != nil {
				return n, err
			}
			if names++; names > d.lim.MaxAttrs {
				return n, d.errorf(ErrTooMany, "attribute count exceeds limit %d in input from %s", d.lim.MaxAttrs, d.stream())
			}
			if name == "" {
				if it == nil || it.typ == itemTable {
					return n, nil
				}
				if flags&FlagMissing != 0 {
					d.warn(fmt.Sprintf("missing attribute %s in input from %s", wanted, d.stream()))
				}
				return n, nil
			}
			if it != nil && (it.typ == itemTable || it.name == name) {
				break
			}
			if flags&FlagExtra != 0 {
				d.warn(fmt.Sprintf("unexpected attribute %s from %s (expecting: %s)", name, d.stream(), wanted))
				return n, nil
			}
			if err := d.skipValue(name, hasValue); err != nil {
				return n, err
			}
		}
		if it.typ == itemTable {
			m, err := d.scanTable(flags, it.table, name, hasValue)
			return n + m, err
		}
		if !hasValue {
			return n, d.errorf(ErrMalformed, "missing value for attribute %s from %s", name, d.stream())
		}
		value, sep, err := d.readValue()
		if err != nil {
			return n, err
		}
		if sep {
			return n, d.errorf(ErrMalformed, "multiple values for attribute %s from %s", name, d.stream())
		}
		switch it.typ {
		case itemStr:
			*it.str = value
		case itemInt:
			u, err := ParseUint32(value)
			if err != nil {
				return n, d.errorf(err, "malformed numerical data from %s while reading %s: %s", d.stream(), ctxValue, value)
			}
			*it.i32 = int(int32(u))
		case itemLong:
			u, err := ParseUint64(value)
			if err != nil {
				return n, d.errorf(err, "malformed numerical data from %s while reading %s: %s", d.stream(), ctxValue, value)
			}
			*it.i64 = int64(u)
		case itemData:
			b, err := DecodeData(d.f, value)
			if err != nil {
				return n, d.errorf(err, "malformed base64 data from %s attribute %s: %.100s", d.stream(), name, value)
			}
			*it.bytes = b
		case itemBool:
			v, ok := parseBool(d.f, value)
			if !ok {
				return n, d.errorf(ErrMalformedBool, "malformed boolean value from %s for attribute %s: %.100s", d.stream(), name, value)
			}
			*it.b = v
		case itemStrEq:
			if value != *it.str {
				return n, d.errorf(ErrUnexpectedValue, "unexpected %s %s from %s (expected: %s)", name, value, d.stream(), *it.str)
			}
			continue // a matching STREQ is not a conversion
		}
		n++
	}
}

func parseBool(f Format, v string) (bool, bool) {
	if f == FormatPlain {
		switch v {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		return false, false
	}
	u, err := ParseUint32(v)
	if err != nil || u > 1 {
		return false, false
	}
	return u == 1, true
}

func (d *Decoder) skipValue(name string, hasValue bool) error {
	if !hasValue {
		if d.f == Format0 {
			return nil
		}
		return nil // base64/plain: a name with no value is skipped whole
	}
	_, _, err := d.readValue()
	return err
}

// scanTable reads a table item whose first name has been read already.
func (d *Decoder) scanTable(flags Flags, t *List, name string, hasValue bool) (int, error) {
	n := 0
	braced := isMarker(name, NameOpen)
	if *t == nil {
		*t = List{}
	}
	for {
		if braced {
			var err error
			name, hasValue, err = d.readName()
			if err != nil {
				return n, err
			}
			if name == "" {
				return n, d.errorf(ErrMalformed, "unterminated table in input from %s", d.stream())
			}
			if isMarker(name, NameClose) {
				break
			}
		}
		if !hasValue {
			return n, d.errorf(ErrMalformed, "missing value for attribute %s from %s", name, d.stream())
		}
		value, sep, err := d.readValue()
		if err != nil {
			return n, err
		}
		if sep {
			return n, d.errorf(ErrMalformed, "multiple values for attribute %s from %s", name, d.stream())
		}
		if len(*t) >= d.lim.MaxTable {
			d.warn(fmt.Sprintf("attribute count exceeds limit %d in input from %s", d.lim.MaxTable, d.stream()))
			return n, nil
		}
		if _, dup := t.Get(name); dup {
			if flags&FlagExtra != 0 {
				d.warn(fmt.Sprintf("duplicate attribute %s in input from %s", name, d.stream()))
				return n, nil
			}
		} else {
			*t = append(*t, Str(name, value))
		}
		n++
		if !braced {
			name, hasValue, err = d.readName()
			if err != nil {
				return n, err
			}
			if name == "" {
				return n, nil
			}
		}
	}
	// After "}" the scan continues with the next item: the caller's loop
	// ends here because a table is the last item Postfix allows to follow
	// without braces; with braces, read the terminator unless FlagMore.
	if flags&FlagMore != 0 {
		return n, nil
	}
	m, err := d.Scan(flags &^ FlagMore)
	return n + m, err
}
