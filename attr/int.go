package attr

import "math"

// ParseUint32 parses s the way Postfix's scanners parse INT values, with
// glibc's sscanf(s, "%u%c"): optional leading white space, an optional sign,
// at least one decimal digit, and nothing after the digits. The digits are
// read as an unsigned long (saturating at 2^64-1 on overflow), negated when
// a '-' sign is present, and truncated to 32 bits, exactly as the C code
// stores them into an unsigned int. So "+2", " 2" and "0002" give 2,
// "4294967298" gives 2, "-1" gives 4294967295, while "2 ", "2x", "0x2"
// (which stops at "x") and "" are rejected with ErrMalformedInt.
//
// Whether the result is a valid value is the caller's business: scache, for
// example, reinterprets it as a C int and rejects values <= 0.
func ParseUint32(s string) (uint32, error) {
	v, err := parseUlong(s)
	return uint32(v), err
}

// ParseUint64 is ParseUint32 for LONG values (sscanf "%lu%c").
func ParseUint64(s string) (uint64, error) { return parseUlong(s) }

func parseUlong(s string) (uint64, error) {
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
		return 0, ErrMalformedInt
	}
	if overflow {
		// strtoul saturates, and does not negate, on overflow.
		return math.MaxUint64, nil
	}
	if neg {
		v = -v
	}
	return v, nil
}

// isCSpace reports whether b is white space for C's isspace in the C locale.
func isCSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}
