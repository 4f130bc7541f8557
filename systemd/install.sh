#!/bin/sh
# install.sh: install kitd from a source tree on a Debian-family system:
# the binary, the unit, the user and groups, and the example config. It
# can run again (an upgrade): it replaces the binary and the unit, and
# never overwrites an existing config or touches certificates. The .deb
# does the same; use this where no package fits.
#
#   sudo systemd/install.sh --binary bin/kitd
#   systemd/install.sh --binary bin/kitd --root /tmp/stage   # a staging tree
set -eu

usage() {
	cat >&2 <<USAGE
usage: $0 --binary FILE [--config FILE] [--root DIR]
  --binary FILE  the kitd binary for this machine (make build, or make cross)
  --config FILE  the example config for a fresh install (default: configs/kit.yaml)
  --root DIR     install into the staging tree DIR instead of this system;
                 systemctl is then only used offline, nothing is started
USAGE
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
binary=""
config="$top/configs/kit.yaml"
root=""

while [ $# -gt 0 ]; do
	case "$1" in
	--binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
	--config) [ $# -ge 2 ] || usage; config=$2; shift 2 ;;
	--root) [ $# -ge 2 ] || usage; root=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "install.sh: unknown argument '$1'" >&2; usage ;;
	esac
done
[ -n "$binary" ] || { echo "install.sh: --binary is required" >&2; usage; }
[ -f "$binary" ] || { echo "install.sh: --binary $binary: no such file" >&2; exit 2; }
[ -f "$config" ] || { echo "install.sh: --config $config: no such file" >&2; exit 2; }
if [ -n "$root" ]; then
	[ -d "$root" ] || { echo "install.sh: --root $root: no such directory" >&2; exit 2; }
	root=$(cd "$root" && pwd)
elif [ "$(id -u)" -ne 0 ]; then
	echo "install.sh: run as root (sudo), or give --root DIR to stage" >&2
	exit 1
fi

# Run again, this is an upgrade, and postinst must treat it as one: keep
# the admin's enable/disable choice, and keep the running agent when the
# new version's config check fails.
previous=""
if [ -e "$root/usr/bin/kitd" ]; then
	previous="a previous install"
fi

# A running kitd keeps its binary open: write beside it, then rename.
install -d -m 0755 "$root/usr/bin"
install -m 0755 "$binary" "$root/usr/bin/.kitd.new"
mv -f "$root/usr/bin/.kitd.new" "$root/usr/bin/kitd"

install -D -m 0644 "$here/kitd.service" "$root/usr/lib/systemd/system/kitd.service"
install -D -m 0644 "$here/kitd.sysusers" "$root/usr/lib/sysusers.d/kitd.conf"
install -D -m 0644 "$here/kitd.udev.rules" "$root/usr/lib/udev/rules.d/60-kitd.rules"
install -d -m 0750 "$root/etc/kitd"
if [ -e "$root/etc/kitd/config.yaml" ]; then
	echo "kitd: keeping the existing $root/etc/kitd/config.yaml"
else
	install -m 0644 "$config" "$root/etc/kitd/config.yaml"
fi

# The rest (user, groups, state directory, enable, start only if the
# config checks) is the package's postinst, so both ways install alike.
DPKG_ROOT="$root" sh "$top/packaging/scripts/postinst" configure ${previous:+"$previous"}
