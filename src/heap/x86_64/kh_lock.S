/*
 * kh_lock.S: x86_64 twin of src/heap/kh_lock.c; contract and layout in
 * kh_lock.h (next, serving, holder, patience: four words; waiting: a
 * doubleword). SysV ABI.
 *
 * kh_lock_acquire  in: rdi = lock.  out: none.  clobbers: whatever the C
 *                  function kheap_cpu_id clobbers (caller-saved), rax, rcx,
 *                  rdx, rsi, flags; and, once it waits, what kheap_spin_yield
 *                  and kh_lock_stuck clobber.
 * kh_lock_acquire_as  in: rdi = lock, esi = holder tag.  out: none.
 *                  clobbers: rax, rcx, rdx, rsi, flags, and once it waits
 *                  what kheap_spin_yield and kh_lock_stuck clobber.
 * kh_lock_release  in: rdi = lock.  out: none.  clobbers: rax.
 *
 * State assumed: interrupts are left alone (the heap brackets the lock with
 * kheap_irq_save/restore). Ordering comes from x86's TSO model: the locked
 * XADD is a full barrier, every plain load is an acquire and every plain
 * store a release, so the spin load and the release store need no fence.
 * Uncontended: the kheap_cpu_id call, the XADD, one compare and the holder
 * store. The wait (re-entry check, spin, yield, bound) is out of line.
 */
#include "kh_asm.h"
#include "kh_lock.h"

KH_FUNC(kh_lock_acquire)
	pushq	%rdi			/* rsp 16-aligned at the call */
	call	kheap_cpu_id@PLT
	popq	%rdi
	leal	1(%rax), %esi		/* esi = holder tag, 0: no CPU named */
	jmp	.Lacq_tagged
KH_END(kh_lock_acquire)

KH_FUNC(kh_lock_acquire_as)
.Lacq_tagged:
	movl	$1, %eax
	lock xaddl %eax, KH_LOCK_NEXT_OFF(%rdi)	/* eax = my ticket */
	cmpl	KH_LOCK_SERVING_OFF(%rdi), %eax
	jne	.Lacq_wait
.Lacq_done:
	movl	%esi, KH_LOCK_HOLDER_OFF(%rdi)
	ret
	/* Callee-saved registers hold the state across the C calls:
	 * rbx = lock, r12d = ticket, r13d = tag, r14d = spins left in this
	 * round, r15d = rounds so far. */
.Lacq_wait:
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15			/* five pushes + return address: aligned */
	movq	%rdi, %rbx
	movl	%eax, %r12d
	movl	%esi, %r13d
	xorl	%r15d, %r15d
	testl	%esi, %esi
	jz	.Lacq_round		/* no CPU named: no tag, no bit */
	/* Only this CPU writes its tag and its bit: seeing either means it
	 * holds or waits for the lock already. */
	cmpl	KH_LOCK_HOLDER_OFF(%rbx), %esi
	je	.Lacq_reentered
	call	.Lbit
	testq	%rax, KH_LOCK_WAITING_OFF(%rbx)
	jz	.Lacq_mark
.Lacq_reentered:
	movq	%rbx, %rdi
	movl	$KH_LOCK_REENTERED, %esi
	call	kh_lock_stuck@PLT
.Lacq_mark:
	call	.Lbit
	lock orq %rax, KH_LOCK_WAITING_OFF(%rbx)
.Lacq_round:
	movl	$KH_SPIN_YIELD, %r14d
.Lacq_spin:
	pause				/* spin-wait hint: frees the sibling thread */
	cmpl	KH_LOCK_SERVING_OFF(%rbx), %r12d
	je	.Lacq_served
	decl	%r14d
	jnz	.Lacq_spin
	call	kheap_spin_yield@PLT	/* every KH_SPIN_YIELD spins */
	incl	%r15d
	movl	KH_LOCK_PATIENCE_OFF(%rbx), %eax
	movl	$KH_SPIN_STUCK, %ecx
	testl	%eax, %eax
	cmovzl	%ecx, %eax
	cmpl	%eax, %r15d
	jb	.Lacq_round
	xorl	%r15d, %r15d
	movq	%rbx, %rdi
	movl	$KH_LOCK_WAITED, %esi
	call	kh_lock_stuck@PLT
	jmp	.Lacq_round
.Lacq_served:
	/* Holder first, then the bit: at no point is this CPU in neither. */
	movl	%r13d, KH_LOCK_HOLDER_OFF(%rbx)
	call	.Lbit
	notq	%rax
	lock andq %rax, KH_LOCK_WAITING_OFF(%rbx)
	movq	%rbx, %rdi
	movl	%r13d, %esi
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	jmp	.Lacq_done
/* rax = this CPU's bit in waiting (1 << (tag - 1), 0 when tag - 1 >= 64)
 * from r13d = tag. Clobbers rcx, flags. */
.Lbit:
	leal	-1(%r13), %ecx
	xorl	%eax, %eax
	cmpl	$KH_LOCK_WAITING_BITS - 1, %ecx
	ja	1f
	movl	$1, %eax
	shlq	%cl, %rax
1:	ret
KH_END(kh_lock_acquire_as)

KH_FUNC(kh_lock_release)
	/* Only the holder writes holder and serving: plain stores, in this
	 * order (TSO keeps it), the second the hand-over. */
	movl	$0, KH_LOCK_HOLDER_OFF(%rdi)
	movl	KH_LOCK_SERVING_OFF(%rdi), %eax
	addl	$1, %eax
	movl	%eax, KH_LOCK_SERVING_OFF(%rdi)
	ret
KH_END(kh_lock_release)

KH_NOEXEC_STACK
