// Package startupparams holds what the scache service knows about the
// main.cf parameters Postfix's scache(8) expands at startup: per Postfix
// release, which parameters, in which order. A $-expansion syntax error in
// the value of one of them kills scache with "dictionary mail_dict: macro
// processing error"; one in any other parameter is harmless. goscache
// expands the same list, picked by the installed release's mail_version,
// so that it dies, or not, where scache does.
//
// The lists are data of the scache service (cmd/goscache), not of
// mastercompat: mastercompat has the mechanism (expanding, at start-up,
// the names a [github.com/goscache/goscache/mastercompat.Service]'s
// StartupParams returns, and reading the release,
// [github.com/goscache/goscache/mastercompat.MailVersion]),
// and this package the scache-specific lists it is given. It is a package
// of its own, not part of package main, because the compatibility tests
// (compat-tests, build tag compat) check goscache against these lists too.
//
// The lists are generated, not written: TestStartupParams_realScache runs
// the real scache of the installed release about 1200 times and, with
// -update-startup-params, rewrites that release's startup-params*.txt here:
//
//	go test ./cmd/goscache/startupparams -run StartupParams_realScache -update-startup-params
package startupparams
