/*
 * start.S: x86_64 entry for QEMU -M pc, loaded by QEMU's multiboot (v1)
 * loader from a 32-bit ELF (the Makefile wraps the 64-bit link with
 * objcopy -O elf32-i386, since QEMU refuses 64-bit multiboot ELFs).
 *
 * In:  _start in 32-bit protected mode, paging off, EAX = multiboot magic
 *      (unused), any stack; ap_entry32 from trampoline.S, same state.
 * Out: kmain() on the boot CPU in long mode, .bss zeroed, sp = __stack_top;
 *      boot_secondary(ap_cpu) on an AP, sp = ap_stack.
 * The first 4 GiB are identity-mapped with 2 MiB pages (the top 32 MiB,
 * which holds the local APIC, uncached). Interrupts stay disabled until a
 * kernel enables them (the SMP stress: pc.c, board_irq_on).
 * Clobbers: everything; nothing returns here.
 */
#include "asm.h"

#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003 /* page-align modules, want a memory map */

	.section .multiboot, "a"
	.balign	4
	.long	MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.section .text.boot, "ax"
	.code32
FUNC(_start)
	cli
	cld
	lgdt	gdt_ptr
	ljmp	$0x08, $1f
1:	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$__stack_top, %esp

	/* pml4, pdpt and four page directories: six zeroed pages. */
	mov	$pml4, %edi
	mov	$(6 * 1024), %ecx
	xor	%eax, %eax
	rep stosl
	movl	$(pdpt + 3), pml4		/* present, writable */
	mov	$0, %ecx
2:	mov	%ecx, %eax			/* pdpt[i] = pd + i * 4096, i < 4 */
	shl	$12, %eax
	add	$(pd + 3), %eax
	mov	%eax, pdpt(,%ecx,8)
	inc	%ecx
	cmp	$4, %ecx
	jb	2b
	/* 2048 entries of 2 MiB: present, writable, page size. */
	xor	%ecx, %ecx
3:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x83, %eax
	cmp	$2032, %ecx			/* 0xfe000000 and up: PCD | PWT */
	jb	4f
	or	$0x18, %eax
4:	mov	%eax, pd(,%ecx,8)
	inc	%ecx
	cmp	$2048, %ecx
	jb	3b
	xor	%esi, %esi			/* boot CPU */
	jmp	enter_long_mode
ENDF(_start)

/* An AP arrives from trampoline.S with the kernel GDT loaded. */
FUNC(ap_entry32)
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$1, %esi			/* application processor */
	jmp	enter_long_mode
ENDF(ap_entry32)

/* esi = 0 on the boot CPU, 1 on an AP; page tables built. */
enter_long_mode:
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$0x20, %eax			/* CR4.PAE */
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx		/* IA32_EFER */
	rdmsr
	or	$0x100, %eax			/* LME */
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax		/* PG | PE */
	mov	%eax, %cr0
	ljmp	$0x18, $long_entry

	.code64
long_entry:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	xor	%eax, %eax
	mov	%ax, %fs
	mov	%ax, %gs
	test	%esi, %esi
	jnz	5f
	mov	$__stack_top, %rsp
	/* .bss is 16-aligned, a multiple of 16 long (linker ASSERTs). */
	mov	$__bss_start, %rdi
	mov	$__bss_end, %rcx
	sub	%rdi, %rcx
	shr	$3, %rcx
	rep stosq
	call	cpu_setup
	call	kmain
	mov	$4, %edi			/* kmain returned: a kernel bug */
	call	board_exit
5:	mov	ap_stack(%rip), %rsp
	call	cpu_setup
	mov	ap_cpu(%rip), %edi
	movl	$1, ap_arrived(%rip)		/* ap_stack and ap_cpu consumed */
	call	boot_secondary
	mov	$4, %edi
	call	board_exit

	.section .rodata
	.balign	16
	.global	gdt, gdt_ptr
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff		/* 0x08: 32-bit code */
	.quad	0x00cf92000000ffff		/* 0x10: data */
	.quad	0x00af9a000000ffff		/* 0x18: 64-bit code */
gdt_end:
gdt_ptr:
	.word	gdt_end - gdt - 1
	.long	gdt

	/* Not in .bss: built before .bss is cleared. */
	.section .pagetables, "aw", @nobits
	.balign	4096
pml4:	.skip	4096
pdpt:	.skip	4096
pd:	.skip	4 * 4096
