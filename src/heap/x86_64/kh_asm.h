/*
 * kh_asm.h: start/end macros for the x86_64 assembly (.S files only, after
 * the C preprocessor). KH_FUNC opens a global function aligned for the
 * decoder; KH_END gives it an ELF size so that profilers and debuggers see
 * it. KH_NOEXEC_STACK marks the object as needing no executable stack, which
 * the linker otherwise assumes for assembly and warns about.
 */
#ifndef KH_ASM_X86_64_H
#define KH_ASM_X86_64_H

#define KH_FUNC(name)            \
	.text;                   \
	.globl name;             \
	.type name, @function;   \
	.p2align 4;              \
	name:

#define KH_END(name) .size name, . - name

#define KH_NOEXEC_STACK .section .note.GNU-stack, "", @progbits

#endif
