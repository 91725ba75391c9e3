package mastercompat

import (
	"math"
	"strings"
	"time"
)

// strtoLong is strtol(s, &end, 10) for a 64-bit long: leading white space
// (C isspace) and a sign are accepted; end is 0 when there are no digits;
// rangeErr reports ERANGE (n is then clamped). attr has the unsigned
// counterpart for the wire (parseUlong); mastercompat may not import attr,
// and the two differ in sign and range handling, so each keeps its own.
func strtoLong(s string) (n int64, end int, rangeErr bool) {
	i := 0
	for i < len(s) && strings.IndexByte(spaceChars, s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			rangeErr = true
		} else {
			u = u*10 + d
		}
		i++
	}
	if i == start {
		return 0, 0, false
	}
	switch {
	case !neg && (rangeErr || u > math.MaxInt64):
		return math.MaxInt64, i, true
	case neg && (rangeErr || u > 1<<63):
		return math.MinInt64, i, true
	case neg:
		return int64(-u), i, false
	}
	return int64(u), i, false
}

// Time returns a time parameter as get_mail_conf_time does: an integer with
// an optional unit letter s, m, h, d or w; without a letter the unit of the
// parameter's default applies (seconds for every parameter here). Errors are
// fatal with Postfix's texts: "parameter NAME: bad time value or unit: V"
// and "invalid NAME: N (min MIN)", in seconds as Postfix counts them. min is
// whole seconds; 0 means no minimum.
func (c *Config) Time(name string, min time.Duration) (time.Duration, error) {
	defUnit := byte('s')
	if d, ok := c.defaults[name]; ok {
		d = c.expand(d)
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				defUnit = d[i]
				break
			}
		}
	}
	v := c.Get(name)
	d, ok := convTime(v, defUnit)
	if !ok {
		return 0, fatalf("parameter %s: bad time value or unit: %s", name, v)
	}
	if min != 0 && d < min {
		return 0, fatalf("invalid %s: %d (min %d)", name, d/time.Second, min/time.Second)
	}
	return d, nil
}

// convTime converts a Postfix time value as global/conv_time.c does:
// strtol rules for the number (leading white space and a sign are
// accepted), then the unit letter (s, m, h, d, w; defUnit when absent);
// anything after the letter is ignored. The result is whole seconds. ok is
// false for a negative value, a number of seconds that overflows a C int,
// or an unknown unit.
func convTime(s string, defUnit byte) (d time.Duration, ok bool) {
	n, end, ok := strtol(s)
	if !ok || n < 0 {
		return 0, false
	}
	unit := defUnit
	if end < len(s) {
		unit = s[end]
	}
	const maxInt = 1<<31 - 1
	var mult int64
	switch unit {
	case 's':
		return time.Duration(n) * time.Second, true
	case 'm':
		mult = 60
	case 'h':
		mult = 3600
	case 'd':
		mult = 86400
	case 'w':
		mult = 7 * 86400
	default:
		return 0, false
	}
	if n >= maxInt/mult {
		return 0, false
	}
	return time.Duration(n*mult) * time.Second, true
}

// strtol parses like strtol(s, &end, 10) followed by Postfix's checks that
// s is not empty and the value fits a C int. end is the index after the
// number, or 0 when there is none.
func strtol(s string) (n int64, end int, ok bool) {
	if s == "" {
		return 0, 0, false
	}
	n, end, rangeErr := strtoLong(s)
	if end == 0 {
		return 0, 0, true // no digits: value 0, end at the start of s
	}
	if rangeErr || n > math.MaxInt32 || n < math.MinInt32 {
		return 0, end, false
	}
	return n, end, true
}
