#!/bin/sh
# Install the Debian packages named as arguments (the set-up scripts pass
# only the missing ones). Uses sudo when not root. Usage: apt-install.sh WHO PKG...
set -eu
who=$1
shift
[ $# -eq 0 ] && exit 0
echo "$who: installing $*"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "$@"
