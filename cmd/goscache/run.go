package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goscache/goscache/cmd/internal/buildinfo"
	"github.com/goscache/goscache/cmd/internal/secflag"
	"github.com/goscache/goscache/mastercompat"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/server"
)

// shutdownTimeout bounds how long a standalone daemon waits for requests in
// progress when it is told to stop.
const shutdownTimeout = 10 * time.Second

// run is the whole program: args is the full command line, argv[0]
// included. It picks master(8) mode or standalone mode.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		args = []string{"goscache"}
	}
	if masterArgv(args[1:], os.LookupEnv) {
		// master(8)'s SIGTERM must kill the process at once (no
		// statistics), so no signal handler is installed here.
		return runMaster(ctx, args, stderr)
	}
	// SIGHUP, SIGINT and SIGTERM all end a standalone daemon the same way:
	// graceful shutdown, statistics logged, socket file removed.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runStandalone(ctx, args, stdout, stderr)
}

// masterArgv reports whether the process was started by master(8): master
// always sets GENERATION and passes -t (transport) and, for scache, -l;
// getopt lets options cluster ("-lt unix"). The standalone flags are long
// words, so no standalone command line matches.
func masterArgv(args []string, lookupEnv func(string) (string, bool)) bool {
	if _, ok := lookupEnv("GENERATION"); ok {
		return true
	}
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") || len(a) < 2 {
			continue
		}
		opts := a[1:]
		if opts == "l" || opts == "t" || (opts[0] == 't' && !strings.HasPrefix(opts, "ttl")) {
			return true
		}
		// A cluster of master option letters containing l or t.
		if strings.ContainsAny(opts, "lt") && strings.Trim(opts, "cdDlnosStuvVz") == "" {
			return true
		}
	}
	return false
}

// standaloneConfig is the parsed standalone command line.
type standaloneConfig struct {
	listen           string
	ttlLimit         time.Duration
	statusUpdateTime time.Duration
	ipcTimeout       time.Duration
	maxSessions      int
	maxClients       int
	keepDead         bool
	announce         bool // false: Postfix 3.5's protocol, no announcement
	log              string
	verbose          bool
	version          bool        // -version: print the version and exit
	socketMode       os.FileMode // permissions of the socket file
	allowGroup       string      // group that may use the socket, or ""
	allowGID         int         // allowGroup resolved; -1 when none
}

func parseStandalone(args []string, stderr io.Writer) (*standaloneConfig, error) {
	var cfg standaloneConfig
	fs := flag.NewFlagSet(filepath.Base(args[0]), flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", "", "socket to serve, `unix:/path` (required)")
	secflag.Var(fs, &cfg.ttlLimit, "ttl-limit", server.DefaultTTLLimit, "connection_cache_ttl_limit: the longest time a connection stays cached (a duration, or bare seconds as in main.cf)")
	secflag.Var(fs, &cfg.statusUpdateTime, "status-update-time", server.DefaultStatusUpdateTime, "connection_cache_status_update_time: how often statistics are logged (a duration, or bare seconds)")
	secflag.Var(fs, &cfg.ipcTimeout, "ipc-timeout", server.DefaultIPCTimeout, "ipc_timeout: time limit for each read and write inside a request (a duration, or bare seconds)")
	fs.BoolVar(&cfg.keepDead, "keep-dead", false, "hand out cached connections whose peer has gone, as Postfix's scache does")
	fs.BoolVar(&cfg.announce, "announce", true, "announce the protocol on every new connection, as Postfix 3.6 and later do; -announce=false speaks Postfix 3.5's protocol (its smtp(8) turns caching off after an announcement)")
	fs.IntVar(&cfg.maxSessions, "max-sessions", 0, "most connections cached at once; the oldest is closed beyond it (0: derived from RLIMIT_NOFILE, -1: no limit)")
	fs.IntVar(&cfg.maxClients, "max-clients", 0, "most clients served at once; more wait in the listen backlog (0: derived from RLIMIT_NOFILE, -1: no limit)")
	fs.StringVar(&cfg.log, "log", "stderr", "where to log: `stderr or a file name`")
	fs.BoolVar(&cfg.verbose, "v", false, "log every request (debug level)")
	mode := fs.String("socket-mode", "0600", "permissions of the socket file, octal (0660 by default with -allow-group)")
	fs.StringVar(&cfg.allowGroup, "allow-group", "", "`group` whose members may use the cache besides root and the daemon's user; the socket file gets this group")
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument: %s", fs.Arg(0))
	}
	if cfg.version {
		return &cfg, nil
	}
	if cfg.listen == "" {
		fs.Usage()
		return nil, errors.New("-listen is required")
	}
	if cfg.ttlLimit < time.Second {
		return nil, fmt.Errorf("-ttl-limit %v: must be at least 1s", cfg.ttlLimit)
	}
	if cfg.statusUpdateTime < time.Second {
		return nil, fmt.Errorf("-status-update-time %v: must be at least 1s", cfg.statusUpdateTime)
	}
	if cfg.ipcTimeout <= 0 {
		return nil, fmt.Errorf("-ipc-timeout %v: must be positive", cfg.ipcTimeout)
	}
	if cfg.maxSessions < -1 {
		return nil, fmt.Errorf("-max-sessions %d: must be -1 (no limit) or more", cfg.maxSessions)
	}
	if cfg.maxClients < -1 {
		return nil, fmt.Errorf("-max-clients %d: must be -1 (no limit) or more", cfg.maxClients)
	}
	modeSet := false
	fs.Visit(func(f *flag.Flag) { modeSet = modeSet || f.Name == "socket-mode" })
	if !modeSet && cfg.allowGroup != "" {
		*mode = "0660"
	}
	m, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || m > 0o777 {
		return nil, fmt.Errorf("-socket-mode %q: want octal permissions such as 0600", *mode)
	}
	cfg.socketMode = os.FileMode(m)
	cfg.allowGID = -1
	if cfg.allowGroup != "" {
		if cfg.allowGID, err = lookupGroup(cfg.allowGroup); err != nil {
			return nil, fmt.Errorf("-allow-group %s: %w", cfg.allowGroup, err)
		}
	}
	return &cfg, nil
}

// usage is goscache -h: both ways goscache runs, the flags of the
// standalone one.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `goscache: a drop-in replacement for Postfix's connection cache daemon, scache(8).

Under master(8), goscache runs where scache runs: master.cf starts it, and
it reads main.cf (connection_cache_ttl_limit, connection_cache_status_update_time,
ipc_timeout, max_idle, ...) and master's command line (-v, -D, -o name=value),
serves the socket master listens on, runs chrooted and unprivileged as
master.cf says and logs as postfix/scache. Switch to it in one of two ways:
  postconf -F 'scache/unix/command = goscache'                    (replace scache)
  postconf -M 'goscache/unix = goscache unix - - y - 1 goscache'   (or a service of its own,
  postconf -e 'connection_cache_service_name = goscache'           pointed at by smtp/lmtp)
  postfix check && postfix reload
The flags below are not used there: master(8) gives scache's options.
See goscache(8) and /usr/share/doc/goscache/operator.md.gz.

Standalone (for tests and trials, without master(8)):
usage: %s -listen unix:/path/to/socket [flags]
       %s -version
`, fs.Name(), fs.Name())
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// runStandalone serves one socket until ctx is done, then shuts down
// gracefully and logs the statistics.
func runStandalone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseStandalone(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintf(stdout, "goscache %s\n", buildinfo.Get())
		return nil
	}
	logw := stderr
	if cfg.log != "stderr" {
		f, err := os.OpenFile(cfg.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	logger := newLogger(logw, cfg.verbose)

	l, err := listen(cfg.listen, cfg.socketMode, cfg.allowGID)
	if err != nil {
		return err
	}
	peers := &server.PeerPolicy{}
	if cfg.allowGID >= 0 {
		peers.GIDs = []int{cfg.allowGID}
	}
	srv := server.New(server.Options{
		Peers:            peers,
		Logger:           logger,
		TTLLimit:         cfg.ttlLimit,
		StatusUpdateTime: cfg.statusUpdateTime,
		IPCTimeout:       cfg.ipcTimeout,
		MaxSessions:      cfg.maxSessions,
		MaxConns:         cfg.maxClients,
		KeepDead:         cfg.keepDead,
		Build:            serverBuild(),
		NoAnnouncement:   !cfg.announce,
	})
	logger.Info("goscache " + buildinfo.Get().String())
	logger.Info("listening on " + cfg.listen)
	clients, sessions := srv.Limits()
	logger.Info(fmt.Sprintf("limits: %s clients served at once, %s connections cached", limitText(clients), limitText(sessions)))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()

	select {
	case err := <-done:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	// Serve returns ErrServerClosed once Shutdown has begun; anything else
	// is an accept error that came first.
	if serveErr := <-done; err == nil && !errors.Is(serveErr, server.ErrServerClosed) {
		err = fmt.Errorf("serve: %w", serveErr)
	}
	srv.LogStatistics()
	logger.Info("stopped")
	return err
}

// serverBuild is this binary's build, as the Server reports it in its
// goscache_stats replies.
func serverBuild() scache.BuildInfo {
	b := buildinfo.Get()
	return scache.BuildInfo{Version: b.Version, Revision: b.Revision, GoVersion: b.GoVersion}
}

// limitText shows a limit, negative meaning none.
func limitText(n int) string {
	if n < 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

// newLogger is the standalone mode's logger: Postfix's line format
// ("postfix/scache[PID]: text", mastercompat's handler, as under
// master(8)) on w, at debug level with -v.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := new(slog.LevelVar)
	if verbose {
		level.Set(slog.LevelDebug)
	}
	return slog.New(mastercompat.NewStderrHandler(w, "postfix/scache", os.Getpid(), level))
}

// listen opens the socket named by addr ("unix:/path"). A stale socket
// file, one nobody accepts on, is removed first; a live one is an error.
// The socket file is created with no permission beyond the owner's (the
// umask is tightened around bind), then given mode and, when gid is not
// -1, that group. Standalone, nothing else keeps other users out: master(8)
// makes its sockets 0666, but inside the 0700 private/ directory.
func listen(addr string, mode os.FileMode, gid int) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok || path == "" {
		return nil, fmt.Errorf("-listen %q: want unix:/path/to/socket", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another server is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return nil, err
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
