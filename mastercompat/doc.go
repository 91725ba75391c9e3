// Package mastercompat lets a Go daemon run as a child of Postfix's master(8)
// the way a multi-server daemon such as scache(8) does.
//
// [Start] is the start-up a master(8) child goes through, in
// master/multi_server.c's order: argv, environment, main.cf, logging, the
// argument checks, master's descriptors, chroot and setuid. A [Service]
// adds its own parameters and steps; the [Child] it returns holds the
// listeners, the status channel ([Master]) and the logger. The pieces it is
// built from are exported for tests and tools; together they mirror the
// child side of Postfix's master protocol:
//
//   - the argv that master/master_ent.c builds, parsed with getopt rules as
//     master/multi_server.c does ([ParseArgs], [Args]);
//   - the environment master hands down: MAIL_CONFIG, GENERATION (octal),
//     MAIL_LOGTAG, POSTLOG_SERVICE, POSTLOG_HOSTNAME, MAIL_VERBOSE and
//     MAIL_DEBUG ([ReadEnv], [Env]);
//   - main.cf with $name expansion, -o overrides and Postfix's time units
//     (global/mail_conf.c, util/mac_expand.c, global/conv_time.c: [Config]);
//   - the inherited descriptors of master/master_proto.h: 3/4 flow pipe, 5
//     status channel, 6.. listeners ([InheritedFiles], [Listeners]);
//   - the 12-byte status record of master/master_proto.c and "master went
//     away", which is end of file on fd 5 ([Master]);
//   - the max_idle timer and the daemon_timeout watchdog ([IdleTimer],
//     [Watchdog]);
//   - chroot to queue_directory and the drop to mail_owner in the order of
//     util/chroot_uid.c ([LookupOwner], [Jail]);
//   - log lines as Postfix writes them: syslog over /dev/log, postlog
//     datagrams to postlogd(8), or plain lines for standalone use
//     (util/msg_syslog.c, util/msg_logger.c: [Handler]).
//
// Startup failures carry Postfix's fatal text in a [*FatalError]; [Start]
// logs it at [LevelFatal] and returns a [*LoggedError], and the caller
// exits 1.
//
// The package knows nothing about scache requests: cmd/goscache wires it to
// package scache.
package mastercompat
