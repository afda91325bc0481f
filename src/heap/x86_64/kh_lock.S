/*
 * kh_lock.S: x86_64 twin of src/heap/kh_lock.c; contract and layout
 * (next ticket at offset 0, owner at offset 4) in kh_lock.h. SysV ABI; no
 * stack use except around the kheap_spin_yield call.
 *
 * kh_lock_acquire  in: rdi = lock.  out: none.  clobbers: rax, rcx, flags; and,
 *                  once it has waited KH_SPIN_YIELD spins, whatever the
 *                  C function kheap_spin_yield clobbers (caller-saved).
 * kh_lock_release  in: rdi = lock.  out: none.  clobbers: rax.
 *
 * State assumed: interrupts are left alone (the heap brackets the lock with
 * kheap_irq_save/restore). Ordering comes from x86's TSO model: the locked
 * XADD is a full barrier, every plain load is an acquire and every plain
 * store a release, so the spin load and the release store need no fence.
 * Acquire by the holder deadlocks, as in the C.
 */
#include "kh_asm.h"
#include "kh_lock.h"

KH_FUNC(kh_lock_acquire)
	movl	$1, %eax
	lock xaddl %eax, (%rdi)		/* eax = my ticket, next += 1 */
	cmpl	4(%rdi), %eax
	jne	.Lacq_wait
	ret
.Lacq_wait:
	movl	$KH_SPIN_YIELD, %ecx
.Lacq_spin:
	pause				/* spin-wait hint: frees the sibling thread */
	cmpl	4(%rdi), %eax
	je	.Lacq_done
	decl	%ecx
	jnz	.Lacq_spin
	pushq	%rdi			/* every KH_SPIN_YIELD spins: */
	pushq	%rax			/* kheap_spin_yield(), stack kept */
	subq	$8, %rsp		/* 16-aligned at the call */
	call	kheap_spin_yield@PLT
	addq	$8, %rsp
	popq	%rax
	popq	%rdi
	jmp	.Lacq_wait
.Lacq_done:
	ret
KH_END(kh_lock_acquire)

KH_FUNC(kh_lock_release)
	/* Only the holder writes owner: a plain increment and store. */
	movl	4(%rdi), %eax
	addl	$1, %eax
	movl	%eax, 4(%rdi)
	ret
KH_END(kh_lock_release)

KH_NOEXEC_STACK
