#!/bin/sh
# Boot one kernel under QEMU (TCG, never KVM) with the UART on stdout and
# report the guest's verdict. Usage:
#   tools/qemu-run.sh BOARD KERNEL TIMEOUT_S [extra QEMU arguments...]
# BOARD is a board of mk/boards.tab, whose line gives the QEMU command line
# and the exit status that means the guest passed.
# Exits 0 iff the guest exited with its success status, 124 when the guest
# ran past TIMEOUT_S (a hung guest is a failure), 1 otherwise.
set -u
board=$1 kernel=$2 limit=$3
shift 3
line=$(awk -v b="$board" '$1 == b { $1 = $2 = $3 = $4 = ""; print; exit }' "$(dirname "$0")/../mk/boards.tab")
if [ -z "$line" ]; then
	echo "qemu-run: unknown board $board (not in mk/boards.tab)" >&2
	exit 1
fi
# shellcheck disable=SC2086
set -- $line -kernel "$kernel" "$@"
pass=$1
shift
timeout -k 2 "$limit" "$@" -display none -nodefaults -monitor none -serial stdio -no-reboot </dev/null
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "qemu-run: TIMEOUT: $board guest still running after ${limit}s ($kernel)"
	exit 124
fi
if [ "$rc" -ne "$pass" ]; then
	echo "qemu-run: $board guest failed: QEMU exit status $rc, success is $pass ($kernel)"
	exit 1
fi
exit 0
