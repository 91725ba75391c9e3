package scache

import (
	"strconv"
	"strings"
)

// announcementSnapshot is the Postfix development snapshot that added the
// protocol announcement (postfix-3.6-20200920): the first release with it
// is 3.6.0. See docs/protocol.md.
const announcementSnapshot = "3.6-20200920"

// Announces reports whether the scache(8) of the Postfix whose mail_version
// is mailVersion ("3.5.25", "3.10.13", "3.6-20200906" for a snapshot)
// announces its protocol on every new connection: Postfix 3.6 and later
// do (from snapshot 3.6-20200920 on), Postfix 3.5 and earlier do not. A
// version it cannot read counts as a current one (true).
func Announces(mailVersion string) bool {
	major, rest, ok := strings.Cut(mailVersion, ".")
	if !ok {
		return true
	}
	end := strings.IndexFunc(rest, func(c rune) bool { return c < '0' || c > '9' })
	if end < 0 {
		end = len(rest)
	}
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil || end == 0 {
		return true
	}
	switch {
	case ma != 3:
		return ma > 3
	case mi != 6:
		return mi > 6
	}
	// 3.6: a release (3.6.0 ...) announces, and so does a snapshot
	// (3.6-YYYYMMDD) from 20200920 on.
	if date, ok := strings.CutPrefix(rest[end:], "-"); ok && len(date) == 8 {
		if _, err := strconv.Atoi(date); err == nil {
			return date >= announcementSnapshot[len("3.6-"):]
		}
	}
	return true
}
