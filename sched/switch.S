/* sched/switch.S: the goroutine context switch.
 *
 * gort__ctx_switch(void **save_sp, void *load_sp)
 *   Pushes the SysV callee-saved registers (rbp, rbx, r12-r15) and the
 *   floating-point control state (MXCSR, x87 control word) on the current
 *   stack, stores rsp in *save_sp, loads load_sp and pops the same set from
 *   there. Caller-saved registers need no saving: the switch is a call.
 *   Frame layout at a saved sp (low to high):
 *     +0  MXCSR (4 bytes)   +4 x87 control word (2 bytes, 2 unused)
 *     +8  r15  +16 r14  +24 r13  +32 r12  +40 rbx  +48 rbp  +56 return address
 *   stack.c builds the same frame for a new goroutine with the return
 *   address pointing at gort__gstart.
 *
 * gort__gstart
 *   Entered by the first switch to a new goroutine. Clears rbp so that
 *   frame-pointer walks stop here, aligns the stack and calls
 *   gort__g_entry (proc.c), which never returns.
 *
 * gort__ctx_restart(void *stack_top)
 *   Abandons the current stack and starts a new goroutine at stack_top with
 *   the default MXCSR and x87 control word. stack_top may be the top of the
 *   stack being abandoned: an exiting goroutine hands its cache-hot stack to
 *   a goroutine that has never run (proc.c, gsched).
 *
 * gort_blocking_begin(void)   (the public entry; the work is in proc.c)
 *   Saves the caller's stack pointer (as it will be after the return) and
 *   its callee-saved registers in the current G (g->syscallsp and
 *   g->syscallregs: offsets G_OFF_SYSCALLSP and M_OFF_CURG in sched.h,
 *   checked by _Static_assert in proc.c), then tail-calls
 *   gort__blocking_begin. The collector scans a goroutine in a blocking
 *   region from there; in C the registers are only known here, before any
 *   compiled code could spill or reuse them.
 *
 * Rejected: ucontext (swapcontext makes a sigprocmask syscall per switch).
 */
#define G_OFF_SYSCALLSP 160
#define M_OFF_CURG      8
        .text
        .globl  gort__ctx_switch
        .hidden gort__ctx_switch
        .type   gort__ctx_switch, @function
        .p2align 4
gort__ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   gort__ctx_switch, .-gort__ctx_switch

        .globl  gort__gstart
        .hidden gort__gstart
        .type   gort__gstart, @function
        .p2align 4
gort__gstart:
        .cfi_startproc
        .cfi_undefined rip
        xorl    %ebp, %ebp
        andq    $-16, %rsp
        call    gort__g_entry
        ud2
        .cfi_endproc
        .size   gort__gstart, .-gort__gstart

        .globl  gort__ctx_restart
        .hidden gort__ctx_restart
        .type   gort__ctx_restart, @function
        .p2align 4
gort__ctx_restart:
        .cfi_startproc
        leaq    -8(%rdi), %rsp
        ldmxcsr default_mxcsr(%rip)
        fldcw   default_fpucw(%rip)
        jmp     gort__gstart
        .cfi_endproc
        .size   gort__ctx_restart, .-gort__ctx_restart

        .globl  gort_blocking_begin
        .type   gort_blocking_begin, @function
        .p2align 4
gort_blocking_begin:
        .cfi_startproc
        movq    gort__tls_m@gottpoff(%rip), %rax
        movq    %fs:(%rax), %rax
        testq   %rax, %rax
        jz      1f
        movq    M_OFF_CURG(%rax), %rax
        testq   %rax, %rax
        jz      1f
        leaq    8(%rsp), %rcx
        movq    %rcx, G_OFF_SYSCALLSP(%rax)
        movq    %rbx, G_OFF_SYSCALLSP+8(%rax)
        movq    %rbp, G_OFF_SYSCALLSP+16(%rax)
        movq    %r12, G_OFF_SYSCALLSP+24(%rax)
        movq    %r13, G_OFF_SYSCALLSP+32(%rax)
        movq    %r14, G_OFF_SYSCALLSP+40(%rax)
        movq    %r15, G_OFF_SYSCALLSP+48(%rax)
1:      jmp     gort__blocking_begin
        .cfi_endproc
        .size   gort_blocking_begin, .-gort_blocking_begin

        .section .rodata
        .p2align 2
default_mxcsr:
        .long   0x1f80
default_fpucw:
        .short  0x037f

        .section .note.GNU-stack,"",@progbits
