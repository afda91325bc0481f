#!/bin/sh
# Install the Debian packages kheap's build and tests need, only those whose
# tool is missing. Safe to run again. Uses sudo when not root.
set -eu

need=""
want() { command -v "$1" >/dev/null 2>&1 || need="$need $2"; }
want make make
want gcc gcc
want clang clang
want aarch64-linux-gnu-gcc "gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu"
want qemu-aarch64 qemu-user
want qemu-system-aarch64 qemu-system-arm
want qemu-system-x86_64 qemu-system-x86
want valgrind valgrind
# The programs make preload-test runs on kheap (python3 on PATH may be a
# pyenv shim; the test runs Debian's).
want sqlite3 sqlite3
want xz xz-utils
want zstd zstd
want bzip2 bzip2
[ -x /usr/bin/python3 ] || need="$need python3"
# The static arm64 test binaries need the cross libc.
[ -e /usr/aarch64-linux-gnu/lib/libc.a ] || need="$need libc6-dev-arm64-cross"
# clang's sanitizer runtime.
echo 'int main(void){return 0;}' > /tmp/kheap-probe.c
clang -fsanitize=address,undefined /tmp/kheap-probe.c -o /tmp/kheap-probe >/dev/null 2>&1 ||
	need="$need libclang-rt-dev"
rm -f /tmp/kheap-probe /tmp/kheap-probe.c

# shellcheck disable=SC2086
sh "$(dirname "$0")/apt-install.sh" tools/setup.sh $need
