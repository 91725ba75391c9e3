// Package mastercompat lets a Go daemon run as a child of Postfix's master(8)
// the way a multi-server daemon such as scache(8) does.
//
// [Start] is the start-up a master(8) child goes through, in
// master/multi_server.c's order: argv (getopt rules, -o overrides), the
// environment master hands down (MAIL_CONFIG, GENERATION, MAIL_LOGTAG,
// POSTLOG_SERVICE, ...), main.cf with $name and relational expansion and
// Postfix's time units, the log (syslog over /dev/log or postlog datagrams to
// postlogd(8), with Postfix's line format and masking), the argument checks,
// master's descriptors (3/4 flow pipe, 5 status channel, 6.. listeners),
// then chroot to queue_directory and the drop to mail_owner. A [Service]
// adds its own parameter defaults and steps; the [Child] it returns holds
// what a daemon serves with:
//
//   - the parsed command line ([Args]), main.cf ([Config]) and the
//     skeleton's parameters ([Params]), mail_owner when -u asked for it
//     ([Owner]);
//   - a logger whose lines are Postfix's, at [LevelFatal] for msg_fatal;
//   - the listeners master passed, as net.Listeners;
//   - the status channel ([Master]): TAKEN/AVAIL records and "master went
//     away" (end of file on fd 5).
//
// A daemon adds the max_idle timer ([IdleTimer]) and the daemon_timeout
// watchdog ([Watchdog]) to its serving loop.
//
// Startup failures carry Postfix's fatal text in a [*FatalError]; [Start]
// logs it at [LevelFatal] and returns a [*LoggedError], and the caller
// exits 1. [Child.Fatal] does the same for a fatal error met while serving.
//
// For tools and tests that play master's side, [AppendRecord] and
// [ParseRecord] encode and decode the status records; [NewStderrHandler]
// gives a process outside master the same log lines on a writer, and
// [MailVersion] asks postconf for the release installed.
//
// The package knows nothing about scache requests: cmd/goscache wires it to
// package scache.
package mastercompat
