package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// quote shows a label or property on one line, with Go string escapes
// (a newline shows as \n), between double quotes. unquote reads it back.
func quote(s string) string { return strconv.Quote(s) }

// unquote turns a command-line label or property into its bytes. The
// argument may be written with or without the surrounding double quotes
// that quote adds; either way Go escapes apply (\n, \t, \\, \", \xHH, \u...).
func unquote(arg string) (string, error) {
	q := arg
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		var b strings.Builder
		b.WriteByte('"')
		for i := 0; i < len(arg); i++ {
			switch c := arg[i]; {
			case c == '\\' && i+1 < len(arg):
				b.WriteByte(c)
				b.WriteByte(arg[i+1])
				i++
			case c == '"':
				b.WriteString(`\"`)
			case c == '\n':
				b.WriteString(`\n`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
		q = b.String()
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: bad escape sequence (write a newline as \\n, a backslash as \\\\)", quote(arg))
	}
	return s, nil
}

// writeProps writes a property string (one or more Postfix plain-format
// records: name=value lines, each record ending in an empty line) as
// indented lines. An empty line between records shows as "--"; a line with
// bytes that are not printable shows quoted.
func writeProps(w io.Writer, indent, prop string) {
	if prop == "" {
		fmt.Fprintf(w, "%s(empty)\n", indent)
		return
	}
	body := strings.TrimRight(prop, "\n")
	if body == "" {
		fmt.Fprintf(w, "%s%s\n", indent, quote(prop))
		return
	}
	for _, line := range strings.Split(body, "\n") {
		switch {
		case line == "":
			fmt.Fprintf(w, "%s--\n", indent)
		case printable(line):
			fmt.Fprintf(w, "%s%s\n", indent, line)
		default:
			fmt.Fprintf(w, "%s%s\n", indent, quote(line))
		}
	}
	if !strings.HasSuffix(prop, "\n") {
		fmt.Fprintf(w, "%s(no final newline)\n", indent)
	}
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// dur shows a duration to a tenth of a second ("1.7s", "2m3.4s"), or
// "expired" for one below zero.
func dur(d time.Duration) string {
	if d < 0 {
		return "expired"
	}
	return d.Round(100 * time.Millisecond).String()
}

// seconds is a duration in seconds for JSON, to the millisecond.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// plural is "1 connection", "2 connections".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
