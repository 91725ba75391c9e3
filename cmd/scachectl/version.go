package main

import (
	"errors"
	"fmt"

	"github.com/goscache/goscache/cmd/internal/buildinfo"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
)

func versionCommand() command {
	return command{
		name:     "version",
		synopsis: "[-json]",
		summary:  "scachectl's version and the running daemon's (or that it is Postfix's scache)",
		run:      runVersion,
	}
}

// buildView is one program's build in the JSON forms.
type buildView struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"go_version"`
}

func (b buildView) String() string {
	return buildinfo.Info{Version: b.Version, Revision: b.Revision, GoVersion: b.GoVersion}.String()
}

// versionView is what "scachectl version -json" prints. Daemon is nil when
// the peer is Postfix's scache, whose release is then MailVersion (from
// postconf, "" when postconf could not tell).
type versionView struct {
	Scachectl   buildView  `json:"scachectl"`
	Server      string     `json:"server"` // "goscache" or "postfix"
	Socket      string     `json:"socket"`
	Daemon      *buildView `json:"daemon"`
	MailVersion string     `json:"mail_version,omitempty"`
}

func ownBuild() buildView {
	b := buildinfo.Get()
	return buildView{Version: b.Version, Revision: b.Revision, GoVersion: b.GoVersion}
}

// runVersion prints scachectl's own version first, then asks the daemon:
// an unreachable daemon is an error after the first line.
func runVersion(e *env, args []string) error {
	fs := e.flags("version", "[-json]")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	v := versionView{Scachectl: ownBuild(), Socket: e.socket}
	if !*asJSON {
		fmt.Fprintf(e.stdout, "scachectl  %s\n", v.Scachectl)
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.Stats()
	switch {
	case errors.Is(err, client.ErrNoExtensions):
		v.Server = "postfix"
		if mv, err := e.inst.postconf(e.ctx, "mail_version"); err == nil {
			v.MailVersion = mv[0]
		}
	case err != nil:
		return fmt.Errorf("version: %w", err)
	default:
		v.Server = scache.ServerName
		v.Daemon = &s.Build
	}
	if *asJSON {
		return writeJSON(e.stdout, v)
	}
	switch {
	case v.Daemon == nil:
		mv := "its release: postconf -h mail_version"
		if v.MailVersion != "" {
			mv = "Postfix " + v.MailVersion + " (postconf mail_version)"
		}
		fmt.Fprintf(e.stdout, "daemon     Postfix's own scache, not goscache (%s) at %s\n", mv, e.socket)
	case v.Daemon.Version == "":
		fmt.Fprintf(e.stdout, "goscache   version not reported (a goscache from before 0.1.0-1) at %s\n", e.socket)
	default:
		fmt.Fprintf(e.stdout, "goscache   %s at %s\n", v.Daemon, e.socket)
	}
	return nil
}
