/* asm.h: start/end macros for assembly functions (.type and .size). */
#ifndef ASM_H
#define ASM_H

#define FUNC(name)              \
	.global name;           \
	.type name, %function;  \
	name:

#define ENDF(name) .size name, . - name

#endif
