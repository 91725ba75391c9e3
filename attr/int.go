package attr

import "math"

// ParseUint32 parses s the way Postfix's scanners parse INT values, with
// glibc's sscanf(s, "%u%c"): optional leading white space, an optional sign,
// at least one decimal digit, and nothing after the digits. The digits are
// read as an unsigned long (saturating at 2^64-1 on overflow), negated when
// a '-' sign is present, and truncated to 32 bits, exactly as glibc stores
// them into an unsigned int. So "+2", " 2" and "0002" give 2,
// "4294967298" gives 2, "-1" gives 4294967295, while "2 ", "2x", "0x2"
// (which stops at "x") and "" are rejected with [ErrMalformedInt].
//
// This layer owns the syntax only. Whether the value is acceptable is the
// caller's business: scache reinterprets it as a C int (int(int32(u))) and
// rejects values <= 0, which is how "-2" and 2147483648..4294967296 end up
// refused while 4294967298 is taken as 2.
//
// sscanf stops at a NUL byte; callers holding bytes that may contain one
// (values of the base64 and plain formats) cut them there first, as [Decoder.Scan] does.
func ParseUint32(s string) (uint32, error) {
	v, ok := parseUlong(s)
	if !ok {
		return 0, ErrMalformedInt
	}
	return uint32(v), nil
}

// ParseUint64 is ParseUint32 for LONG values (sscanf "%lu%c"), without the
// truncation to 32 bits.
func ParseUint64(s string) (uint64, error) {
	v, ok := parseUlong(s)
	if !ok {
		return 0, ErrMalformedInt
	}
	return v, nil
}

// parseUlong is strtoul(s, &end, 10) with the whole of s consumed, as
// sscanf("%lu%c") accepts it. mastercompat has a strtol of its own
// (strtoLong, for main.cf values): the layering keeps the two packages
// apart (neither may import the other), and the two differ in sign and
// range handling, so each keeps its scanner.
func parseUlong[T string | []byte](s T) (uint64, bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var v uint64
	overflow := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			overflow = true
		}
		v = v*10 + d
		i++
	}
	if i == start || i != len(s) {
		return 0, false
	}
	if overflow {
		// strtoul saturates, and does not negate, on overflow.
		return math.MaxUint64, true
	}
	if neg {
		v = -v
	}
	return v, true
}

// isCSpace reports whether b is white space for C's isspace in the C locale.
func isCSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}
