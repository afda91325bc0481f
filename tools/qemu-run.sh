#!/bin/sh
# Boot one kernel under QEMU (TCG, never KVM) with the UART on stdout and
# report the guest's verdict. Usage:
#   tools/qemu-run.sh BOARD KERNEL TIMEOUT_S [extra QEMU arguments...]
# BOARD is virt, raspi3b or pc; QEMU_CPU overrides virt's -cpu (cortex-a72).
# Exits 0 iff the guest exited with its success status (arm64: semihosting
# exit 0; pc: isa-debug-exit value 0x10, which QEMU turns into 33), 124 when
# the guest ran past TIMEOUT_S (a hung guest is a failure), 1 otherwise.
set -u
board=$1 kernel=$2 limit=$3
shift 3
case $board in
virt)
	pass=0
	set -- qemu-system-aarch64 -M virt -cpu "${QEMU_CPU:-cortex-a72}" -m 256M -semihosting \
		-kernel "$kernel" "$@" ;;
raspi3b)
	pass=0
	set -- qemu-system-aarch64 -M raspi3b -semihosting -kernel "$kernel" "$@" ;;
pc)
	pass=33
	set -- qemu-system-x86_64 -M pc -m 256M -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "$kernel" "$@" ;;
*)
	echo "qemu-run: unknown board $board" >&2
	exit 1 ;;
esac
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
