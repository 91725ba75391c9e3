package mastercompat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is main.cf as a Postfix daemon sees it: the file's name = value
// pairs, then the command-line overrides, over built-in defaults for the
// parameters the multi-server skeleton and scache read
// (global/mail_conf.c, util/dict.c dict_load_fp). Values are expanded with
// $name, ${name}, $(name), ${name?value}, ${name:value}, ${name?{value}},
// ${name:{value}}, ${name?{value1}:{value2}} and relational expressions
// such as ${{value3} <= {value4} ? {value1} : {value2}} like
// util/mac_expand.c (see [Config.Expand]). A Config is not safe for
// concurrent use.
type Config struct {
	// Dir is the configuration directory, Path is Dir/main.cf.
	Dir, Path string
	// Warnings holds Postfix's non-fatal complaints met while reading and
	// expanding (e.g. "overriding earlier entry"), for the caller to log
	// at warning level once logging is up.
	Warnings []string

	values   map[string]string
	defaults map[string]string
}

// builtinDefaults returns the built-in defaults (as `postconf -d` prints
// them for Debian's Postfix 3.7.11) of every parameter this package and
// scache read. myhostname, mydomain and config_directory depend on the host
// and are filled in by [NewConfig].
func builtinDefaults() map[string]string {
	return map[string]string{
		"connection_cache_ttl_limit":          "2s",
		"connection_cache_status_update_time": "600s",
		"connection_cache_protocol_timeout":   "5s",
		"connection_cache_service_name":       "scache",
		"max_idle":                            "100s",
		"max_use":                             "100",
		"ipc_timeout":                         "3600s",
		"daemon_timeout":                      "18000s",
		"queue_directory":                     "/var/spool/postfix",
		"mail_owner":                          "postfix",
		"setgid_group":                        "postdrop",
		"default_privs":                       "nobody",
		"syslog_name":                         "${multi_instance_name?{$multi_instance_name}:{postfix}}",
		"multi_instance_name":                 "",
		"syslog_facility":                     "mail",
		"maillog_file":                        "",
		"maillog_file_prefixes":               "/var, /dev/stdout",
		"postlog_service_name":                "postlog",
		"line_length_limit":                   "2048",
		"daemon_directory":                    "/usr/lib/postfix/sbin",
		"command_directory":                   "/usr/sbin",
		"data_directory":                      "/var/lib/postfix",
		"meta_directory":                      "/etc/postfix",
		"compatibility_level":                 "0",
		"smtputf8_enable":                     "${{$compatibility_level} <level {1} ? {no} : {yes}}",
	}
}

// NewConfig returns a Config for directory dir with no main.cf settings:
// every lookup yields the built-in default. hostname stands in for
// gethostname(2) when deriving the myhostname and mydomain defaults.
func NewConfig(dir, hostname string) *Config {
	c := &Config{
		Dir:      dir,
		Path:     filepath.Join(dir, "main.cf"),
		values:   make(map[string]string),
		defaults: builtinDefaults(),
	}
	c.defaults["config_directory"] = dir
	if i := strings.IndexByte(hostname, '.'); i >= 0 {
		c.defaults["myhostname"] = hostname
		c.defaults["mydomain"] = hostname[i+1:]
	} else {
		c.defaults["myhostname"] = hostname + ".$mydomain"
		c.defaults["mydomain"] = "localdomain"
	}
	return c
}

// ReadConfig reads dir/main.cf as mail_conf_suck does. A file that cannot
// be opened is fatal: "open PATH: ERRNO".
func ReadConfig(dir string) (*Config, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	c := NewConfig(dir, host)
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, &FatalError{Text: fmt.Sprintf("open %s: %s", c.Path, errnoText(err)), Err: err}
	}
	defer f.Close()
	if err := c.Load(f); err != nil {
		return nil, err
	}
	return c, nil
}

// Load adds the name = value lines of a main.cf read from r. Logical lines
// continue on lines that start with white space; lines whose first non-blank
// character is '#' and blank lines are skipped (util/readlline.c). A line
// that is not name = value is fatal: `PATH, line N: WHY: "LINE"`.
func (c *Config) Load(r io.Reader) error {
	br := bufio.NewReader(r)
	var (
		logical []byte // the logical line being built
		first   int    // its first physical line number
		lineno  int
	)
	flush := func() error {
		if len(logical) == 0 {
			return nil
		}
		text := string(logical)
		logical = logical[:0]
		name, value, why := SplitNameValue(text)
		if why != "" {
			return fatalf("%s, line %d: %s: \"%s\"", c.Path, first, why, text)
		}
		if old, ok := c.values[name]; ok && old != value {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s, line %d: overriding earlier entry: %s=%s", c.Path, first, name, old))
		}
		c.values[name] = value
		return nil
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lineno++
			line = bytes.TrimSuffix(line, []byte("\n"))
			trimmed := bytes.TrimLeft(line, spaceChars)
			switch {
			case len(trimmed) == 0 || trimmed[0] == '#':
				// comment or blank: neither starts nor ends a logical line
			case len(trimmed) < len(line): // continuation
				if len(logical) == 0 {
					c.Warnings = append(c.Warnings, fmt.Sprintf("%s: logical line must not start with whitespace: \"%.30s%s\"",
						c.Path, line, ellipsis(len(line) > 30)))
					break
				}
				logical = append(logical, line...)
			default:
				if err := flush(); err != nil {
					return err
				}
				first = lineno
				logical = append(logical, line...)
			}
		}
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return &FatalError{Text: fmt.Sprintf("read %s: %s", c.Path, errnoText(err)), Err: err}
		}
	}
}

func ellipsis(b bool) string {
	if b {
		return "..."
	}
	return ""
}

// Set overrides a parameter, as -o name=value does (mail_conf_update).
func (c *Config) Set(name, value string) { c.values[name] = value }

// Apply sets every override in order.
func (c *Config) Apply(overrides []Override) {
	for _, o := range overrides {
		c.Set(o.Name, o.Value)
	}
}

// Raw returns a parameter's unexpanded value: the override or main.cf
// setting, else the built-in default. ok is false for a parameter that is
// neither set nor known.
func (c *Config) Raw(name string) (value string, ok bool) {
	if v, ok := c.values[name]; ok {
		return v, true
	}
	v, ok := c.defaults[name]
	return v, ok
}

// Get returns a parameter's expanded value ("" when unknown).
func (c *Config) Get(name string) string {
	v, ok := c.Raw(name)
	if !ok {
		return ""
	}
	return c.Expand(v)
}

// Expand expands $name references in s recursively, as mail_conf_eval
// does (util/mac_expand.c with MAC_EXP_FLAG_RECURSE). Unknown names expand
// to nothing. Relational expressions (Postfix >= 3.0) are supported:
// ${{a} OP {b}}, optionally followed by ?{iftrue}, :{iffalse} or both,
// with OP one of ==, !=, <, <=, >=, > (numeric when both operands are all
// digits, else bytewise), or the same with the "level" suffix (<=level
// and so on), which compares compatibility levels such as 3.6.
//
// Syntax errors are recorded in Warnings with mac_expand's texts, and the
// rest of the expansion is skipped as mac_expand skips it; Postfix itself
// then gives up with a fatal error. Postfix's other fatal error here, an
// all-digit operand that overflows a C long, is recorded the same way as
// "mac_exp_eval: bad conversion: N".
func (c *Config) Expand(s string) string {
	var b strings.Builder
	c.macExpand(&b, s, 0, new(bool))
	return b.String()
}

// maxNesting is mac_expand's limit on macro call nesting.
const maxNesting = 100

// maxOperandDepth bounds relational operands inside relational operands.
// Each operand starts a fresh mac_expand context whose nesting count starts
// at zero, so Postfix has no limit there and crashes on a parameter that
// compares its own value; here the expansion fails with the nesting warning.
const maxOperandDepth = 100

// macExpander is one mac_expand context: the output, the sticky error
// flag and the nesting counter, which (as in mac_expand) goes up on every
// callback and comes down only when the callback succeeds.
type macExpander struct {
	c      *Config
	out    *strings.Builder
	failed bool
	level  int
	depth  int   // relational operand nesting, see maxOperandDepth
	abort  *bool // shared by every context of one Expand: set past maxOperandDepth
}

// macExpand expands s into b in a fresh context and reports failure.
func (c *Config) macExpand(b *strings.Builder, s string, depth int, abort *bool) (failed bool) {
	e := &macExpander{c: c, out: b, depth: depth, abort: abort}
	e.parse(s)
	return e.failed
}

// warn records a syntax error and makes the context fail.
func (e *macExpander) warn(format string, args ...any) {
	e.c.Warnings = append(e.c.Warnings, fmt.Sprintf(format, args...))
	e.failed = true
}

// parse splits s into literal text and macro references like
// util/mac_parse.c and hands each piece to literal or expr. It goes on
// after a failed piece (the context's sticky error makes later pieces
// no-ops) and stops at its own errors. It reports whether this call saw a
// failure.
func (e *macExpander) parse(s string) (failed bool) {
	var lit []byte
	for i := 0; i < len(s); {
		if s[i] != '$' {
			lit = append(lit, s[i])
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit = append(lit, '$')
			i += 2
			continue
		}
		if len(lit) > 0 {
			failed = e.callback(string(lit), false) || failed
			lit = lit[:0]
		}
		i++
		var expr string
		if i < len(s) && (s[i] == '{' || s[i] == '(') {
			open, close := s[i], byte('}')
			if open == '(' {
				close = ')'
			}
			depth, j := 1, i+1
			for ; j < len(s); j++ {
				if s[j] == open {
					depth++
				} else if s[j] == close {
					if depth--; depth == 0 {
						break
					}
				}
			}
			if j >= len(s) {
				e.warn("truncated macro reference: \"%s\"", s)
				return true
			}
			expr, i = s[i+1:j], j+1
		} else {
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			expr, i = s[i:j], j
		}
		if expr == "" {
			e.warn("empty macro name: \"%s\"", s)
			return true
		}
		failed = e.callback(expr, true) || failed
	}
	if len(lit) > 0 && !failed {
		failed = e.callback(string(lit), false)
	}
	return failed
}

func isNameChar(ch byte) bool {
	return ch == '_' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
}

// macWhitespace is MAC_EXP_WHITESPACE (CHARS_SPACE).
const macWhitespace = " \t\r\n"

func skipSpace(s string) string { return strings.TrimLeft(s, macWhitespace) }

// clip is C's "%.Ns": at most n bytes of s.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// callback handles one piece of parse's output and reports whether the
// context has failed.
func (e *macExpander) callback(text string, isExpr bool) bool {
	if e.level > maxNesting {
		e.warn("unreasonable macro call nesting: \"%s\"", text)
	}
	e.level++
	if *e.abort {
		e.failed = true
	}
	if e.failed {
		return true
	}
	if !isExpr {
		e.out.WriteString(text)
	} else if !e.expr(text) {
		return true // like mac_expand, a syntax error leaves level raised
	}
	e.level--
	return e.failed
}

// expr handles the inside of one $name, ${...} or $(...) reference. It
// returns false after a syntax error in expr itself; errors inside the
// results it expands only set e.failed.
func (e *macExpander) expr(expr string) bool {
	var (
		value   string // the looked-up value or the relational result
		defined bool
		op      byte   // '?', ':' or 0
		rest    string // what follows op
	)
	if cp := skipSpace(expr); strings.HasPrefix(cp, "{") {
		result, after, ok := e.relational(cp)
		if !ok {
			return false
		}
		value, defined = result, true
		if after != "" {
			if after[0] != '?' && after[0] != ':' {
				e.warn("\"?\" or \":\" expected at: \"...}>>>%s\"", clip(after, 20))
				return false
			}
			op, rest = after[0], after[1:]
		}
	} else {
		j := 0
		for j < len(cp) && isNameChar(cp[j]) {
			j++
		}
		name, after := cp[:j], skipSpace(cp[j:])
		if after != "" {
			if after[0] != '?' && after[0] != ':' {
				consumed := len(expr) - len(cp) + j
				e.warn("attribute name syntax error at: \"...%s>>>%s\"", expr[:consumed], clip(expr[consumed:], 20))
				return false
			}
			op, rest = after[0], after[1:]
		}
		value, defined = e.c.Raw(name)
	}
	nonEmpty := defined && value != ""
	switch op {
	case 0:
		if nonEmpty {
			e.parse(value)
		}
		return true
	case '?':
		payload, after, ok := e.operand(rest)
		if !ok {
			return false
		}
		if nonEmpty {
			e.parse(payload)
		}
		if after == "" {
			return true
		}
		if after[0] != ':' {
			e.warn("\":\" expected at: \"...%s}>>>%s\"", payload, clip(after, 20))
			return false
		}
		rest = after[1:]
	}
	payload, after, ok := e.operand(rest)
	if !ok {
		return false
	}
	if !nonEmpty {
		e.parse(payload)
	}
	if after != "" {
		e.warn("unexpected input at: \"...%s}>>>%s\"", payload, clip(after, 20))
		return false
	}
	return true
}

// operand splits the result operand after ? or :. A {...} operand ends at
// its balanced closing brace (white space after it is skipped); any other
// operand is the rest of the expression, white space included.
func (e *macExpander) operand(s string) (payload, after string, ok bool) {
	if t := skipSpace(s); strings.HasPrefix(t, "{") {
		return e.curly(t)
	}
	return s, "", true
}

// curly takes the {...} payload at the start of s and skips the white
// space after it.
func (e *macExpander) curly(s string) (payload, after string, ok bool) {
	depth := 1
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return s[1:i], skipSpace(s[i+1:]), true
			}
		}
	}
	e.warn("unbalanced {} in attribute expression: \"%s\"", s)
	return "", "", false
}

// Relational operators, in the order of mac_expand's operator table.
const (
	relEQ = "=="
	relNE = "!="
	relLT = "<"
	relLE = "<="
	relGE = ">="
	relGT = ">"
)

// relOpChars are the characters mac_expand takes as one operator token.
const relOpChars = "<>!=?+-*/~&|%"

// relSuffixLevel is the operator suffix that compat_level.c registers
// (compat_level_relop_register): <=level and so on compare compatibility
// levels.
const relSuffixLevel = "level"

// relational evaluates "{left} OP {right}" at the start of s (which starts
// with '{') to "true" or "" and returns the text after the right operand,
// white space skipped. ok is false after a syntax or evaluation error.
func (e *macExpander) relational(s string) (result, after string, ok bool) {
	left, cp, ok := e.curly(s)
	if !ok {
		return "", "", false
	}
	n := 0
	for n < len(cp) && strings.IndexByte(relOpChars, cp[n]) >= 0 {
		n++
	}
	op := cp[:n]
	switch op {
	case relEQ, relNE, relLT, relLE, relGE, relGT:
	default:
		e.warn("\"%s\" or \"%s\"\" or \"%s\"\" or \"%s\"\" or \"%s\"\" or \"%s\" expected at: \"...%s}>>>%s\"",
			relEQ, relNE, relLT, relLE, relGE, relGT, left, clip(cp, 20))
		return "", "", false
	}
	cp = cp[n:]
	level := false
	if cp != "" && isAlnum(cp[0]) {
		m := 1
		for m < len(cp) && isAlnum(cp[m]) {
			m++
		}
		if cp[:m] != relSuffixLevel {
			e.warn("bad operator suffix at: \"...%s>>>%s\"", op, cp[:m])
			return "", "", false
		}
		level, cp = true, cp[m:]
	}
	t := skipSpace(cp)
	if !strings.HasPrefix(t, "{") {
		e.warn("\"{expression}\" expected at: \"...{%s} %s>>>%s\"", left, op, clip(cp, 20))
		return "", "", false
	}
	right, after, ok := e.curly(t)
	if !ok {
		return "", "", false
	}
	var lb, rb strings.Builder
	if e.depth >= maxOperandDepth {
		e.warn("unreasonable macro call nesting: \"%s\"", left)
		*e.abort = true
		return "", "", false
	}
	if e.c.macExpand(&lb, left, e.depth+1, e.abort) {
		e.failed = true
	}
	if e.c.macExpand(&rb, right, e.depth+1, e.abort) {
		e.failed = true
	}
	if *e.abort {
		return "", "", false
	}
	var delta int
	if level {
		delta, ok = e.compareLevels(lb.String(), rb.String())
	} else {
		delta, ok = e.compare(lb.String(), rb.String())
	}
	if !ok {
		e.failed = true
	}
	if e.failed {
		return "", "", false
	}
	var truth bool
	switch op {
	case relEQ:
		truth = delta == 0
	case relNE:
		truth = delta != 0
	case relLT:
		truth = delta < 0
	case relLE:
		truth = delta <= 0
	case relGE:
		truth = delta >= 0
	case relGT:
		truth = delta > 0
	}
	if truth {
		return "true", after, true
	}
	return "", after, true
}

func isAlnum(ch byte) bool {
	return ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
}

// compare is mac_exp_eval: numeric when both operands are non-empty and
// all digits, else bytewise like strcmp. A number beyond a C long is
// Postfix's fatal "mac_exp_eval: bad conversion".
func (e *macExpander) compare(left, right string) (delta int, ok bool) {
	if !allDigits(left) || !allDigits(right) {
		return strings.Compare(left, right), true
	}
	l, _, lErr := strtoLong(left)
	r, _, rErr := strtoLong(right)
	switch {
	case lErr:
		e.warn("mac_exp_eval: bad conversion: %s", left)
		return 0, false
	case rErr:
		e.warn("mac_exp_eval: bad conversion: %s", right)
		return 0, false
	}
	return cmpInt64(l, r), true
}

// compareLevels is compat_level.c's relational operator: both operands
// are compatibility levels "major[.minor[.patch]]".
func (e *macExpander) compareLevels(left, right string) (delta int, ok bool) {
	l, ok := e.compatLevel(left)
	if !ok {
		return 0, false
	}
	r, ok := e.compatLevel(right)
	if !ok {
		return 0, false
	}
	return cmpInt64(l, r), true
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compatLevel is compat_level_from_string: major (up to LONG_MAX>>20),
// minor and patch (up to 1023) packed into one number, each parsed with
// strtol rules.
func (e *macExpander) compatLevel(s string) (int64, bool) {
	limits := []int64{math.MaxInt64 >> 20, 0x3ff, 0x3ff}
	shifts := []uint{20, 10, 0}
	var res int64
	rest := s
	for k := range limits {
		n, end, rangeErr := strtoLong(rest)
		if end == 0 || rangeErr || n < 0 || n > limits[k] ||
			(end < len(rest) && (rest[end] != '.' || k == 2)) {
			break
		}
		res |= n << shifts[k]
		if end == len(rest) {
			return res, true
		}
		rest = rest[end+1:]
	}
	e.warn("malformed compatibility level syntax: \"%s\"", s)
	return 0, false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

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
// and "invalid NAME: N (min MIN)". min is in seconds; 0 means no minimum.
func (c *Config) Time(name string, min int) (time.Duration, error) {
	defUnit := byte('s')
	if d, ok := c.defaults[name]; ok {
		d = c.Expand(d)
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				defUnit = d[i]
				break
			}
		}
	}
	v := c.Get(name)
	secs, ok := ConvTime(v, defUnit)
	if !ok {
		return 0, fatalf("parameter %s: bad time value or unit: %s", name, v)
	}
	if min != 0 && secs < min {
		return 0, fatalf("invalid %s: %d (min %d)", name, secs, min)
	}
	return time.Duration(secs) * time.Second, nil
}

// ConvTime converts a Postfix time value to seconds as global/conv_time.c
// does: strtol rules for the number (leading white space and a sign are
// accepted), then the unit letter (s, m, h, d, w; defUnit when absent);
// anything after the letter is ignored. ok is false for a negative value, a
// value that overflows a C int, or an unknown unit.
func ConvTime(s string, defUnit byte) (secs int, ok bool) {
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
		return int(n), true
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
	return int(n * mult), true
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

// Params are the parameters the multi-server skeleton itself reads
// (global/mail_params.c, master/multi_server.c), after expansion.
type Params struct {
	QueueDirectory      string        // queue_directory: chdir and chroot target
	MailOwner           string        // mail_owner: the user for -u
	SyslogName          string        // syslog_name: first part of the log tag
	SyslogFacility      string        // syslog_facility
	MaillogFile         string        // maillog_file: non-empty selects postlog logging
	MaillogFilePrefixes string        // maillog_file_prefixes
	PostlogServiceName  string        // postlog_service_name
	MyHostname          string        // myhostname: host field of postlog records
	MaxIdle             time.Duration // max_idle (min 1s)
	IPCTimeout          time.Duration // ipc_timeout (min 1s)
	DaemonTimeout       time.Duration // daemon_timeout (min 1s)
	// SMTPUTF8Enable is smtputf8_enable, which Postfix copies into
	// util_utf8_enable: log text then keeps UTF-8 (see [Printable]).
	SMTPUTF8Enable bool
}

// Params reads the skeleton's parameters. Errors are [*FatalError]s.
func (c *Config) Params() (Params, error) {
	p := Params{
		QueueDirectory:      c.Get("queue_directory"),
		MailOwner:           c.Get("mail_owner"),
		SyslogName:          c.Get("syslog_name"),
		SyslogFacility:      c.Get("syslog_facility"),
		MaillogFile:         c.Get("maillog_file"),
		MaillogFilePrefixes: c.Get("maillog_file_prefixes"),
		PostlogServiceName:  c.Get("postlog_service_name"),
		MyHostname:          c.Get("myhostname"),
	}
	var err error
	for _, t := range []struct {
		name string
		dst  *time.Duration
	}{
		{"daemon_timeout", &p.DaemonTimeout},
		{"ipc_timeout", &p.IPCTimeout},
		{"max_idle", &p.MaxIdle},
	} {
		if *t.dst, err = c.Time(t.name, 1); err != nil {
			return Params{}, err
		}
	}
	if p.SMTPUTF8Enable, err = c.Bool("smtputf8_enable"); err != nil {
		return Params{}, err
	}
	return p, nil
}

// Bool reads a boolean parameter as get_mail_conf_bool does: "yes" or
// "no" in any case; anything else is fatal ("bad boolean configuration:
// NAME = VALUE").
func (c *Config) Bool(name string) (bool, error) {
	v := c.Get(name)
	switch {
	case strings.EqualFold(v, "yes"):
		return true, nil
	case strings.EqualFold(v, "no"):
		return false, nil
	}
	return false, fatalf("bad boolean configuration: %s = %s", name, v)
}
