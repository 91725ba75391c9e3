// Package buildinfo says which build of goscache is running: the version
// and the source revision it was built from, and the Go release that built
// it. Every command reports the same [Info].
//
// The version has one source, the first entry of cmd/goscache/deb/changelog
// (the package's version); cmd/goscache/deb/build.sh and the Makefile stamp
// it, with the git commit, into the binaries:
//
//	go build -ldflags "-X github.com/goscache/goscache/cmd/internal/buildinfo.version=0.1.0-1 \
//	                   -X github.com/goscache/goscache/cmd/internal/buildinfo.revision=$(git rev-parse HEAD)"
//
// A binary built without the stamp (a plain go build, go install) reports
// the module version Go recorded ("devel" inside the source tree) and the
// commit from Go's own VCS stamp (vcs.revision, "-dirty" when the tree had
// uncommitted changes), or "unknown" when there is none.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X by cmd/goscache/deb/build.sh and the Makefile.
var (
	version  string
	revision string
)

// unknown stands for a field the build did not record.
const unknown = "unknown"

// devel is the version of a build from a source tree that was not stamped.
const devel = "devel"

// Info identifies one build.
type Info struct {
	Version   string // "0.1.0-1", or "devel" (an unstamped build)
	Revision  string // the git commit, or "unknown"
	GoVersion string // runtime.Version() of the binary
}

// Get returns the running binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, revision, bi)
}

// resolve applies the rules of the package doc: stamped values first, then
// what Go recorded in bi (which may be nil).
func resolve(stampedVersion, stampedRevision string, bi *debug.BuildInfo) Info {
	i := Info{Version: stampedVersion, Revision: stampedRevision, GoVersion: runtime.Version()}
	if bi != nil && bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	if i.Version == "" {
		i.Version = devel
		if bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
	}
	if i.Revision == "" {
		i.Revision = vcsRevision(bi)
	}
	return i
}

// vcsRevision is Go's VCS stamp of the build, or unknown.
func vcsRevision(bi *debug.BuildInfo) string {
	if bi == nil {
		return unknown
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return unknown
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// shortRevision is the revision cut to 12 characters, as git abbreviates
// it, keeping a "-dirty" suffix.
func (i Info) shortRevision() string {
	rev, dirty := strings.CutSuffix(i.Revision, "-dirty")
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// String is the version line every command prints:
// "0.1.0-1 (revision 0123456789ab, go1.26.0)".
func (i Info) String() string {
	return i.Version + " (revision " + i.shortRevision() + ", " + i.GoVersion + ")"
}
