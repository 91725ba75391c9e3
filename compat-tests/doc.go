// Package compattest is goscache's compatibility suite against real Postfix.
//
// Its tests carry the build tag "compat" and run with
//
//	go test -tags compat ./compat-tests/...
//
// as root on Debian with the postfix package installed (compat-tests/setup.sh
// installs it). Each end-to-end scenario runs twice, once with Postfix's own
// scache(8) and once with goscache in its place, against the SMTP sink of
// package sink, and the figures are compared side by side. The differential
// tests replay one scripted client session against both daemons and compare
// the transcripts. See docs/compat.md.
package compattest
