package attr

import "errors"

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
	itemStrBytes
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

// WantStrBytes wants a string attribute like [WantStr], but copies its
// value into *p, reusing *p's storage: a caller that scans into the same
// slice again and again, and keeps the value only until its next scan,
// allocates nothing once the slice has grown to the longest value.
func WantStrBytes(name string, p *[]byte) Item {
	return Item{typ: itemStrBytes, name: name, bytes: p}
}

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

// WantTable wants a name-value table (RECV_ATTR_HASH) appended to *p.
// Entries are stored as Postfix's htable stores them: name and value cut at
// their first NUL byte, a name already present is not stored again (with
// FlagExtra it ends the scan with a warning), and at Limits.MaxTable
// entries (ATTR_HASH_LIMIT) the scan ends with a warning. Each entry read,
// stored or not, counts as one conversion. If the input opens the table
// with "{", the entries run to "}" and the scan goes on with the next item;
// otherwise every remaining attribute up to the list terminator goes into
// the table, so it should be the last item.
func WantTable(p *List) Item { return Item{typ: itemTable, table: p} }

// Scan reads the attributes named by items from the current list with the
// rules of Postfix's attr_scan (util/attr_scan0.c and its base64 and plain
// twins) and returns the number of conversions, counted as Postfix counts
// them. Outcomes:
//
//   - At the start, before the first byte of the list, a reader error is
//     returned as is: (0, io.EOF) at a clean end of stream. Postfix returns
//     0 there without a message.
//   - A list terminator before all items were found returns the count so
//     far and a nil error; with FlagMissing, Warn gets "missing attribute
//     NAME in input from STREAM". The caller compares the count.
//   - An attribute other than the one wanted is skipped, or, with
//     FlagExtra, reported to Warn as "unexpected attribute NAME from STREAM
//     (expecting: WANTED)" and the count so far is returned with its value
//     left unread, as Postfix leaves it.
//   - After the last item the terminator is read (unless FlagMore); an
//     attribute met instead is handled as above with the wanted name
//     "(list terminator)".
//   - Anything Postfix treats as fatal (its -1) returns the count so far and
//     a *ScanError whose Msg is Postfix's log text: malformed values, a
//     missing or second value (base64 and plain formats), a STREQ mismatch,
//     end of input or a timeout inside the list, and the Limits.
//
// Names and the values of INT, LONG, BOOL, STREQ and table items are read
// as C strings, up to a NUL byte (only the base64 and plain formats can
// carry one); a STR value is delivered whole.
func (d *Decoder) Scan(flags Flags, items ...Item) (int, error) {
	if err := d.start(); err != nil {
		return 0, err
	}
	var (
		n, next int
		st      scanState
		it      *Item // the item wanted; nil: the list terminator
	)
	for ; ; n++ {
		if st.state == stItem {
			if next == len(items) {
				if flags&FlagMore != 0 {
					return n, nil
				}
				it, st.wanted = nil, "(list terminator)"
			} else {
				it = &items[next]
				next++
				st.wanted = it.name
				if it.typ == itemTable {
					st.state, st.wanted, st.seen = stTable, "(any attribute name or list terminator)", nil
				}
			}
		}
		name, hasValue, found, err := d.locate(&st, it, flags)
		if err != nil {
			return n, err
		}
		switch found {
		case foundEnd:
			return n, nil
		case foundClose:
			n-- // "}" is no conversion; go on with the next item
			continue
		}

		if !hasValue {
			return n, d.errorf(ErrMalformed, "missing value for %s attribute %s from %s", d.typeWord(it.typ), cstr(name), d.stream())
		}
		value, multiple, err := d.readValue()
		if err != nil {
			return n, err
		}
		if multiple && it.typ != itemInt && it.typ != itemLong && it.typ != itemBool {
			return n, d.multiple(name)
		}
		counted, end, err := d.store(&st, it, flags, name, value)
		if err != nil || end {
			return n, err
		}
		if !counted {
			n--
		}
		// The base64 scanner converts a number before it checks for a
		// second value.
		if multiple {
			return n, d.multiple(name)
		}
	}
}

// Scan's states follow Postfix's wanted_type: the next item, inside an
// unbraced table, or inside "{ ... }".
const (
	stItem = iota
	stTable
	stBraced
)

// scanState is where Scan stands in its items. The item wanted is kept
// apart, so that the items (Scan's variadic argument) stay on the
// caller's stack.
type scanState struct {
	state  int
	names  int    // attribute names read, for Limits.MaxAttrs
	wanted string // the item's name as the warnings show it
	seen   map[string]struct{}
}

// What locate found.
const (
	foundAttr  = iota // an attribute for st.it
	foundEnd          // the list terminator, or a reason to stop (warned)
	foundClose        // the "}" that closes a braced table
)

// locate reads attribute names up to the next one of interest, skipping
// (or, with FlagExtra, stopping at) the others, and follows the table
// markers.
func (d *Decoder) locate(st *scanState, it *Item, flags Flags) (name []byte, hasValue bool, found int, err error) {
	for {
		name, hasValue, err = d.readName()
		if err != nil {
			return nil, false, 0, err
		}
		if d.isTerminator(name, hasValue) {
			if it != nil && st.state != stTable && flags&FlagMissing != 0 {
				d.warnf("missing attribute %s in input from %s", st.wanted, d.stream())
			}
			return nil, false, foundEnd, nil
		}
		if st.names++; st.names > d.lim.MaxAttrs {
			return nil, false, 0, d.errorf(ErrTooMany, "attribute count exceeds limit %d in input from %s", d.lim.MaxAttrs, d.stream())
		}
		if st.state == stTable && d.isMarker(name, hasValue, NameOpen) {
			st.state, st.wanted = stBraced, "(any attribute name or '}')"
			continue
		}
		if st.state == stBraced && d.isMarker(name, hasValue, NameClose) {
			st.state = stItem
			return nil, false, foundClose, nil
		}
		if st.state != stItem || (it != nil && string(cstr(name)) == it.name) {
			return name, hasValue, foundAttr, nil
		}
		if flags&FlagExtra != 0 {
			d.warnf("unexpected attribute %s from %s (expecting: %s)", cstr(name), d.stream(), st.wanted)
			return nil, false, foundEnd, nil
		}
		if err := d.skipValue(hasValue); err != nil {
			return nil, false, 0, err
		}
	}
}

// store converts value for it. counted is false when Postfix does not
// count it as a conversion (a matching STREQ); end is true when the scan
// stops here without an error (a table's duplicate or limit, warned).
func (d *Decoder) store(st *scanState, it *Item, flags Flags, name, value []byte) (counted, end bool, err error) {
	switch it.typ {
	case itemStr:
		*it.str = string(value)
	case itemStrBytes:
		*it.bytes = append((*it.bytes)[:0], value...)
	case itemInt:
		u, ok := parseUlong(cstr(value))
		if !ok {
			return false, false, d.malformedInt(value)
		}
		*it.i32 = int(int32(uint32(u)))
	case itemLong:
		u, ok := parseUlong(cstr(value))
		if !ok {
			return false, false, d.malformedInt(value)
		}
		*it.i64 = int64(u)
	case itemData:
		if d.f == FormatBase64 {
			*it.bytes = append([]byte(nil), value...)
			break
		}
		b, ok := appendUnB64(nil, value)
		if !ok {
			return false, false, d.errorf(ErrMalformedData, "malformed base64 data from %s while reading %s: %s", d.stream(), ctxValue, cTrunc(value))
		}
		*it.bytes = b
	case itemBool:
		v, err := d.parseBool(value)
		if err != nil {
			return false, false, err
		}
		*it.b = v
	case itemStrEq:
		if string(cstr(value)) != *it.str {
			return false, false, d.errorf(ErrUnexpectedValue, "unexpected %s %s from %s (expected: %s)", cstr(name), cstr(value), d.stream(), *it.str)
		}
		return false, false, nil // a matching STREQ is not a conversion
	case itemTable:
		return true, d.storeEntry(st, it.table, flags, name, value), nil
	}
	return true, false, nil
}

// storeEntry adds a table entry as Postfix's htable does; it reports
// whether the scan stops here (a duplicate under FlagExtra, or the
// table's limit), which it has warned about.
func (d *Decoder) storeEntry(st *scanState, table *List, flags Flags, name, value []byte) (end bool) {
	if st.seen == nil {
		st.seen = make(map[string]struct{}, len(*table)+8)
		for _, a := range *table {
			st.seen[a.Name] = struct{}{}
		}
	}
	key := cstr(name)
	if _, dup := st.seen[string(key)]; dup {
		if flags&FlagExtra != 0 {
			d.warnf("duplicate attribute %s in input from %s", key, d.stream())
			return true
		}
		return false
	}
	if len(*table) >= d.lim.MaxTable {
		d.warnf("attribute count exceeds limit %d in input from %s", d.lim.MaxTable, d.stream())
		return true
	}
	k := string(key)
	st.seen[k] = struct{}{}
	*table = append(*table, Str(k, string(cstr(value))))
	return false
}

// typeWord is the type in Postfix's "missing value for TYPE attribute".
func (d *Decoder) typeWord(t itemType) string {
	switch t {
	case itemInt, itemLong:
		return "number"
	case itemBool:
		if d.f == FormatPlain {
			return "number" // sic: attr_scan_plain.c
		}
		return "boolean"
	case itemData:
		return "data"
	}
	return "string"
}

func (d *Decoder) multiple(name []byte) error {
	return d.errorf(ErrMalformed, "multiple values for attribute %s from %s", cstr(name), d.stream())
}

func (d *Decoder) malformedInt(value []byte) error {
	return d.errorf(ErrMalformedInt, "malformed numerical data from %s while reading %s: %s", d.stream(), ctxValue, cTrunc(value))
}

func (d *Decoder) parseBool(value []byte) (bool, error) {
	c := cstr(value)
	if d.f == FormatPlain {
		switch string(c) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	} else {
		u, ok := parseUlong(c)
		if !ok {
			return false, d.malformedInt(value)
		}
		switch uint32(u) {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	}
	return false, d.errorf(ErrMalformedBool, "malformed boolean value from %s while reading %s: %s", d.stream(), ctxValue, cTrunc(value))
}

// skipValue skips the value of an attribute nobody asked for. Postfix
// ignores a failure here: the null scanner logs it and reads on, and the
// others stop silently; either way the next name read then fails. That
// second failure is the error returned.
func (d *Decoder) skipValue(hasValue bool) error {
	var err error
	switch {
	case d.f == Format0:
		_, _, err = d.token(0, 0, ctxValue)
		var se *ScanError
		if errors.As(err, &se) && !errors.Is(err, ErrTooLong) {
			d.warnf("%s", se.Msg)
		}
	case hasValue:
		_, _, err = d.token('\n', '\n', ctxValue)
	}
	if err == nil || errors.Is(err, ErrTooLong) {
		return err
	}
	return d.prematureError(errors.Unwrap(err), ctxName)
}
