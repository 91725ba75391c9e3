package mastercompat

import (
	"fmt"
	"math"
	"strings"
)

// expand expands $name references in s recursively, as mail_conf_eval
// does (util/mac_expand.c with MAC_EXP_FLAG_RECURSE). Unknown names expand
// to nothing. Relational expressions (Postfix >= 3.0) are supported:
// ${{a} OP {b}}, optionally followed by ?{iftrue}, :{iffalse} or both,
// with OP one of ==, !=, <, <=, >=, > (numeric when both operands are all
// digits, else bytewise), or the same with the "level" suffix (<=level
// and so on), which compares compatibility levels such as 3.6.
//
// Syntax errors are recorded in warnings with mac_expand's texts, and the
// rest of the expansion is skipped as mac_expand skips it; Postfix itself
// then gives up with a fatal error. Postfix's other fatal error here, an
// all-digit operand that overflows a C long, is recorded the same way as
// "mac_exp_eval: bad conversion: N".
func (c *Config) expand(s string) string {
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
	abort  *bool // shared by every context of one expand: set past maxOperandDepth
}

// macExpand expands s into b in a fresh context and reports failure.
func (c *Config) macExpand(b *strings.Builder, s string, depth int, abort *bool) (failed bool) {
	e := &macExpander{c: c, out: b, depth: depth, abort: abort}
	e.parse(s)
	return e.failed
}

// warn records a syntax error and makes the context fail.
func (e *macExpander) warn(format string, args ...any) {
	e.c.warnings = append(e.c.warnings, fmt.Sprintf(format, args...))
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
		value, defined = e.c.raw(name)
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
	op, level, cp, ok := e.relOperator(left, cp)
	if !ok {
		return "", "", false
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
	if relTrue(op, delta) {
		return "true", after, true
	}
	return "", after, true
}

// relOperator reads the operator at the start of cp, which follows the
// left operand {left}, and its optional "level" suffix; rest is what
// follows them.
func (e *macExpander) relOperator(left, cp string) (op string, level bool, rest string, ok bool) {
	n := 0
	for n < len(cp) && strings.IndexByte(relOpChars, cp[n]) >= 0 {
		n++
	}
	op = cp[:n]
	switch op {
	case relEQ, relNE, relLT, relLE, relGE, relGT:
	default:
		e.warn("\"%s\" or \"%s\"\" or \"%s\"\" or \"%s\"\" or \"%s\"\" or \"%s\" expected at: \"...%s}>>>%s\"",
			relEQ, relNE, relLT, relLE, relGE, relGT, left, clip(cp, 20))
		return "", false, "", false
	}
	cp = cp[n:]
	if cp != "" && isAlnum(cp[0]) {
		m := 1
		for m < len(cp) && isAlnum(cp[m]) {
			m++
		}
		if cp[:m] != relSuffixLevel {
			e.warn("bad operator suffix at: \"...%s>>>%s\"", op, cp[:m])
			return "", false, "", false
		}
		level, cp = true, cp[m:]
	}
	return op, level, cp, true
}

// relTrue applies the relational operator op to the comparison's result.
func relTrue(op string, delta int) bool {
	switch op {
	case relEQ:
		return delta == 0
	case relNE:
		return delta != 0
	case relLT:
		return delta < 0
	case relLE:
		return delta <= 0
	case relGE:
		return delta >= 0
	case relGT:
		return delta > 0
	}
	return false
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
