#!/bin/sh
# setup.sh: make this machine (or container) able to run the compatibility
# suite: install Debian's postfix package when it is missing. Used natively
# by "make compat" and inside the Docker image by compat-tests/Dockerfile.
#
# The package is installed with debconf's "No configuration", so nothing is
# written to /etc/postfix/main.cf and no mail system is started: the suite
# creates its own private instances (postfix -c DIR) under a temp dir.
#
# Without root and without postfix it explains and exits 0 (the Go tests
# then skip with a message), unless CI=true, where it fails.
set -eu

daemon_dir=${COMPAT_DAEMON_DIR:-/usr/lib/postfix/sbin}
command_dir=${COMPAT_COMMAND_DIR:-/usr/sbin}

if [ -x "$daemon_dir/scache" ] && [ -x "$daemon_dir/master" ] && [ -x "$command_dir/postfix" ]; then
	echo "setup: postfix present: $("$command_dir/postconf" -d -h mail_version 2>/dev/null || echo unknown version)"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "setup: postfix is not installed and we are not root; the compat suite will be skipped" >&2
	[ "${CI:-}" = true ] && exit 1
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "setup: postfix is not installed and this is not a Debian system (no apt-get)" >&2
	[ "${CI:-}" = true ] && exit 1
	exit 0
fi

echo "setup: installing Debian's postfix package"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Debian unstable's Release file carries a Valid-Until date a few days
# ahead; a machine whose clock runs past it (or an archive snapshot) must
# not stop the install.
apt-get -o Acquire::Check-Valid-Until=false update -qq
apt-get install -y -qq --no-install-recommends postfix >/dev/null
"$command_dir/postconf" -d -h mail_version
