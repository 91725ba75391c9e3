package mastercompat

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// Owner is mail_owner resolved to numeric ids, looked up before chroot
// because /etc/passwd is not visible inside the jail.
type Owner struct {
	Name   string
	UID    int
	GID    int
	Groups []int // supplementary groups, as initgroups(3) would set them
}

// lookupOwner resolves mail_owner as global/mail_params.c check_mail_owner
// does. dir is the configuration directory, used in the fatal texts "file
// DIR/main.cf: parameter mail_owner: unknown user name value: NAME" and
// "...: user NAME has privileged user ID" (or group ID).
func lookupOwner(name, dir string) (Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Owner{}, &FatalError{Text: fmt.Sprintf("file %s/main.cf: parameter mail_owner: unknown user name value: %s", dir, name), Err: err}
	}
	o := Owner{Name: name}
	if o.UID, err = strconv.Atoi(u.Uid); err != nil {
		return Owner{}, fmt.Errorf("mastercompat: user %s: uid %q: %w", name, u.Uid, err)
	}
	if o.GID, err = strconv.Atoi(u.Gid); err != nil {
		return Owner{}, fmt.Errorf("mastercompat: user %s: gid %q: %w", name, u.Gid, err)
	}
	if o.UID == 0 {
		return Owner{}, fatalf("file %s/main.cf: parameter mail_owner: user %s has privileged user ID", dir, name)
	}
	if o.GID == 0 {
		return Owner{}, fatalf("file %s/main.cf: parameter mail_owner: user %s has privileged group ID", dir, name)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return Owner{}, &FatalError{Text: "initgroups: " + errnoText(err), Err: err}
	}
	seen := map[int]bool{o.GID: true}
	o.Groups = append(o.Groups, o.GID)
	for _, g := range gids {
		n, err := strconv.Atoi(g)
		if err == nil && !seen[n] {
			seen[n] = true
			o.Groups = append(o.Groups, n)
		}
	}
	return o, nil
}

// jail is what master's -c and -u ask for.
type jail struct {
	Root  string // chroot target (queue_directory) when -c, else ""
	Owner *Owner // user to become when -u, else nil
}

// prepareTimeZone loads the local time zone so that log time stamps and
// statistics keep local time after chroot hides /etc/localtime (the tzset()
// of multi_server_main).
func prepareTimeZone() { _, _ = time.Now().Zone() }

// enter applies the jail in util/chroot_uid.c's order: setgid and the
// supplementary groups, then chroot and chdir("/"), then setuid. Log sockets
// must be open and the time zone loaded before (see prepareTimeZone). On
// Linux, Go applies the id changes to every thread. Errors are fatal with
// chroot_uid's texts.
func (j jail) enter() error {
	if j.Owner != nil {
		if err := syscall.Setgid(j.Owner.GID); err != nil {
			return &FatalError{Text: fmt.Sprintf("setgid(%d): %s", j.Owner.GID, errnoText(err)), Err: err}
		}
		if err := syscall.Setgroups(j.Owner.Groups); err != nil {
			return &FatalError{Text: "initgroups: " + errnoText(err), Err: err}
		}
	}
	if j.Root != "" {
		if err := syscall.Chroot(j.Root); err != nil {
			return &FatalError{Text: fmt.Sprintf("chroot(%s): %s", j.Root, errnoText(err)), Err: err}
		}
		if err := os.Chdir("/"); err != nil {
			return &FatalError{Text: "chdir(/): " + errnoText(err), Err: err}
		}
	}
	if j.Owner != nil {
		if err := syscall.Setuid(j.Owner.UID); err != nil {
			return &FatalError{Text: fmt.Sprintf("setuid(%d): %s", j.Owner.UID, errnoText(err)), Err: err}
		}
	}
	return nil
}

// chdir changes to the queue directory, which multi_server_main always
// does ("chdir(\"DIR\"): ERRNO" is fatal).
func chdir(dir string) error {
	if err := os.Chdir(dir); err != nil {
		return &FatalError{Text: fmt.Sprintf("chdir(\"%s\"): %s", dir, errnoText(err)), Err: err}
	}
	return nil
}
