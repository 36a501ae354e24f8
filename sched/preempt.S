/* sched/preempt.S: the trampoline an asynchronously preempted goroutine runs.
 *
 * The SIGURG handler (preempt.c) found the goroutine at a safe point in user
 * code. It left the interrupted code's 128-byte red zone alone, stored the
 * interrupted PC just below it, and returned from the signal with rsp
 * pointing at that PC and rip at gort__async_preempt. So on entry:
 *     0(%rsp)        interrupted PC (our "return address")
 *     8..135(%rsp)   the interrupted code's red zone, untouched
 *     136(%rsp)      the interrupted rsp
 * Every register still holds the interrupted code's value. The trampoline
 * saves all of them: the general registers and rflags on the stack, the
 * vector, x87 and other extended state with XSAVE into a 64-byte-aligned
 * area sized as CPUID leaf 0xD reports for the features the kernel enabled
 * in XCR0 (FXSAVE's 512 bytes on CPUs without XSAVE). Then it calls
 * gort__preempt_park, which yields the processor; when the goroutine is
 * resumed (maybe on another thread) it restores everything and returns to
 * the interrupted PC with `ret $128`, which also pops the red-zone gap, so
 * rsp is exactly the interrupted value again.
 *
 * The frame is a normal rbp frame (return address = interrupted PC), so
 * backtraces taken while the goroutine is parked here walk on into the
 * interrupted code.
 */
        .text
        .globl  gort__async_preempt
        .hidden gort__async_preempt
        .type   gort__async_preempt, @function
        .p2align 4
gort__async_preempt:
        .cfi_startproc
        .cfi_def_cfa rsp, 8
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbp, 0
        movq    %rsp, %rbp
        .cfi_def_cfa_register rbp
        pushfq
        cld                             /* the C ABI wants DF clear at calls */
        pushq   %rax
        pushq   %rbx
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        pushq   %r8
        pushq   %r9
        pushq   %r10
        pushq   %r11
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        /* rsp = rbp - 120. Extended state below, 64-byte aligned. */
        subq    gort__xsave_size(%rip), %rsp
        andq    $-64, %rsp
        cmpb    $0, gort__use_xsave(%rip)
        je      1f
        /* XRSTOR checks the header: XSAVE writes XSTATE_BV only, so the
         * rest of the 64-byte header at 512 must start out zero. */
        xorl    %eax, %eax
        movq    %rax, 512(%rsp)
        movq    %rax, 520(%rsp)
        movq    %rax, 528(%rsp)
        movq    %rax, 536(%rsp)
        movq    %rax, 544(%rsp)
        movq    %rax, 552(%rsp)
        movq    %rax, 560(%rsp)
        movq    %rax, 568(%rsp)
        movl    gort__xsave_mask(%rip), %eax
        movl    gort__xsave_mask+4(%rip), %edx
        xsave64 (%rsp)
        jmp     2f
1:      fxsave64 (%rsp)
2:
        call    gort__preempt_park
        cmpb    $0, gort__use_xsave(%rip)
        je      3f
        movl    gort__xsave_mask(%rip), %eax
        movl    gort__xsave_mask+4(%rip), %edx
        xrstor64 (%rsp)
        jmp     4f
3:      fxrstor64 (%rsp)
4:
        leaq    -120(%rbp), %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rbx
        popq    %rax
        popfq
        popq    %rbp
        .cfi_def_cfa rsp, 8
        ret     $128
        .cfi_endproc
        .size   gort__async_preempt, .-gort__async_preempt

        .section .note.GNU-stack,"",@progbits
