// atlab hardware harness: runs AT instructions on QEMU `-M virt,virtualization=on,secure=on
// -cpu max` and streams PAR_EL1 (or the exception taken instead) to a host file.
//
// Built by tools/hw/driver.py, which owns every address and layout below and passes them with
//   aarch64-linux-gnu-as --defsym RAM_BASE=.. --defsym HARNESS_BASE=.. --defsym HARNESS_SIZE=..
//                        --defsym JOB_BASE=..
// and links the image at HARNESS_BASE.  QEMU starts it at EL3 with every MMU off.
//
// Flow.  EL3 reads the job table at JOB_BASE (header, then one entry per scenario); for each
// scenario it zeroes the words the previous scenario wrote, writes the scenario's words,
// programs and reads back the scenario's registers, and runs each op: invalidate every TLB,
// set PSTATE.PAN, then either branch to the op's stub (el=3) or ERET into it at EL1h/EL2h.
// The stub executes the one AT instruction and comes back to EL3 (SMC #0 from EL1/EL2).  An
// exception taken by the op instead is caught by the vectors of the EL it is taken to, which
// pass ESR/FAR/HPFAR/ELR back to EL3 the same way.  EL3 writes one record per op with the
// semihosting call SYS_WRITE, so a run that crashes QEMU still leaves every finished op behind.
//
// Register conventions.  EL3's loop state lives in x19-x28; everything that runs below EL3 (op
// stubs, EL1/EL2 vectors) touches only x0-x15 and never uses memory or a stack, so the op's EL
// needs only the harness code mapped (executable) when its MMU is on.  Return protocol to EL3:
//   x6 = 0: the AT completed and PAR_EL1 holds its result;
//   x6 = 1: an exception was taken: x1 = ESR_ELx, x2 = FAR_ELx, x3 = HPFAR_EL2 (0 unless taken
//           to EL2), x4 = ELR_ELx, x5 = the EL it was taken to.
//
// Job table (u64 words, little-endian), at JOB_BASE:
//   header (512 bytes): [0] magic "ATLABJOB"  [1] number of scenarios  [2] NREG
//                       [3] output path length  [4..63] output path, NUL-terminated
//   scenario:           [0] el  [1] n_mem  [2] n_ops  [3] 0  [4..4+NREG) register values
//                       then n_mem x (pa, value), then n_ops x (op index, va, pan)
// Output records (u64 words) appended to the output file:
//   START [1, NREG, n_scenarios, 0]
//   SCEN  [2, scenario, NREG, readback x NREG]
//   OP    [3, scenario, op, kind | el << 8, PAR or ESR, FAR, HPFAR, ELR]
//   FATAL [4, scenario, op, vector offset, ESR_EL3, ELR_EL3, FAR_EL3, SPSR_EL3]
//   END   [5, n_scenarios, 0, 0]
// Semihosting exit codes (apart from QEMU's own 1): 0 done, 65 cannot open the output, 66 bad
// job table, 67 unexpected exception at EL3 (after a FATAL record), 68 output write failed.

        .arch   armv8.4-a

        // Semihosting (Arm "Semihosting for AArch32 and AArch64"): HLT #0xF000, op in w0,
        // parameter block address in x1.
        .equ    SYS_OPEN, 0x01
        .equ    SYS_WRITE, 0x05
        .equ    SYS_EXIT, 0x18
        .equ    ADP_Stopped_ApplicationExit, 0x20026
        .equ    OPEN_MODE_WB, 5

        .equ    JOB_MAGIC_LO, 0x5441 // "ATLABJOB" as a little-endian u64, 16 bits at a time
        .equ    JOB_MAGIC_1, 0x414c
        .equ    JOB_MAGIC_2, 0x4a42
        .equ    JOB_MAGIC_HI, 0x424f
        .equ    JOB_HEADER_SIZE, 512
        .equ    JOB_PATH, 32
        .equ    SCEN_REGS, 32
        .equ    OP_ENTRY_SIZE, 24

        .equ    REC_START, 1
        .equ    REC_SCEN, 2
        .equ    REC_OP, 3
        .equ    REC_FATAL, 4
        .equ    REC_END, 5

        // SCR_EL3, fixed for the whole run:
        //   NS=1 (bit 0): EL0-EL2 are Non-secure, so the Non-secure EL1&0, EL2 and EL2&0
        //                 regimes are the ones translated (PAR_EL1.NS reports it) and EL2 is
        //                 enabled (SCR_EL3.EEL2=0: no Secure EL2);
        //   HCE=1 (bit 8): HVC enabled;
        //   RW=1 (bit 10): EL2 (and so EL1, with HCR_EL2.RW=1) is AArch64;
        //   SMD=0 (bit 7): SMC enabled at EL1/EL2: it is how the op stubs return to EL3;
        //   IRQ/FIQ/EA=0: nothing is routed to EL3; TWI/TWE/ST/APK/API=0;
        //   FGTEn=0, HXEn=0: the fine-grained traps (HFG*_EL2) and HCRX_EL2 act as 0.
        // With --defsym V94=1 (QEMU >= 11, tools/hw/driver.py's REGISTERS_V94), also
        //   HXEn=1 (bit 38): HCRX_EL2 in force; TCR2En=1 (bit 43): TCR2_EL1/EL2 in force
        //   (IsTCR2EL1Enabled(), IsTCR2EL2Enabled()); PIEn=1 (bit 45), AIEn=1 (bit 46): no EL3
        //   trap of PIR/PIRE0/S2PIR and MAIR2; SCTLR2En=0: SCTLR2_ELx treated as 0.
        .ifdef  V94
        .equ    SCR_EL3_VALUE, (1 << 46) | (1 << 45) | (1 << 43) | (1 << 38) | (1 << 10) | (1 << 8) | (1 << 0)
        .else
        .equ    SCR_EL3_VALUE, (1 << 10) | (1 << 8) | (1 << 0)
        .endif

        // SCTLR_EL3 while the harness runs: only the RES1 bits (29:28, 23:22, 18, 16, 11, 5:4).
        // M=0 keeps EL3's MMU off (flat, Device-nGnRnE data accesses: everything the harness
        // reads or writes is 8-byte aligned); EE=0 little-endian; A=0, SA=0.  A scenario's
        // own SCTLR_EL3 is in force only around its EL3 ops.
        .equ    HARNESS_SCTLR_EL3_HI, 0x30c5
        .equ    HARNESS_SCTLR_EL3_LO, 0x0830

        // SPSR_EL3 for the ERET into an op: D, A, I, F masked (bits 9:6), M[3:0] = EL1h/EL2h;
        // PSTATE.PAN (bit 22) is or-ed in per op.
        .equ    SPSR_EL1H, 0x3c5
        .equ    SPSR_EL2H, 0x3c9

        .equ    EC_SMC64, 0x17          // ESR_ELx.EC: SMC instruction executed in AArch64

        .text
        .global _start
_start:
        // ---- one-time EL3 set-up -----------------------------------------------------------
        mov     x0, #HARNESS_SCTLR_EL3_LO
        movk    x0, #HARNESS_SCTLR_EL3_HI, lsl #16
        msr     sctlr_el3, x0
        adr     x0, el3_vectors
        msr     vbar_el3, x0
        adr     x0, lower_vectors       // one table serves EL1 and EL2 (the handler reads
        msr     vbar_el2, x0            // CurrentEL); set once, scenarios never change them
        msr     vbar_el1, x0
        ldr     x0, =SCR_EL3_VALUE
        msr     scr_el3, x0
        isb
        // QEMU puts its device tree at the start of RAM: zero RAM below the harness so that
        // every word a scenario does not list reads as 0, as in atlab's model.
        ldr     x0, =RAM_BASE
        ldr     x1, =HARNESS_BASE
1:      stp     xzr, xzr, [x0], #16
        cmp     x0, x1
        b.lo    1b

        // ---- job header ---------------------------------------------------------------------
        ldr     x19, =JOB_BASE
        mov     x21, #0                 // scenario index (also used by FATAL records)
        mov     x26, #0                 // op index
        ldr     x0, [x19]
        mov     x1, #JOB_MAGIC_LO
        movk    x1, #JOB_MAGIC_1, lsl #16
        movk    x1, #JOB_MAGIC_2, lsl #32
        movk    x1, #JOB_MAGIC_HI, lsl #48
        mov     x9, #66
        cmp     x0, x1
        b.ne    exit
        ldp     x20, x0, [x19, #8]      // x20 = number of scenarios, x0 = NREG of the job
        cmp     x0, #NREG
        b.ne    exit
        ldr     x1, =params             // SYS_OPEN {path, mode, length}
        add     x0, x19, #JOB_PATH
        mov     x2, #OPEN_MODE_WB
        stp     x0, x2, [x1]
        ldr     x0, [x19, #24]
        str     x0, [x1, #16]
        mov     x0, #SYS_OPEN
        hlt     #0xf000
        mov     x9, #65
        cmn     x0, #1
        b.eq    exit
        mov     x27, x0                 // x27 = output file handle
        ldr     x10, =record
        mov     x0, #REC_START
        mov     x1, #NREG
        stp     x0, x1, [x10]
        stp     x20, xzr, [x10, #16]
        mov     x0, #32
        bl      emit

        add     x22, x19, #JOB_HEADER_SIZE   // x22 = current scenario entry
        mov     x24, #0                 // x23/x24 = memory list/count of the previous scenario

        // ---- per scenario -------------------------------------------------------------------
scenario_loop:
        cmp     x21, x20
        b.hs    all_done
        mov     x26, #0
        cbz     x24, 2f                 // zero the words the previous scenario wrote (and
1:      ldr     x0, [x23], #16          // whatever a hardware AF/dirty update put in them)
        str     xzr, [x0]
        subs    x24, x24, #1
        b.ne    1b
2:      ldp     x28, x24, [x22]         // x28 = el, x24 = n_mem
        add     x3, x22, #SCEN_REGS     // x3 = register values
        add     x23, x3, #(NREG * 8)    // x23 = memory list, kept for the zeroing above
        mov     x4, x23
        mov     x5, x24
        cbz     x5, 4f
3:      ldp     x6, x7, [x4], #16       // write the scenario's words
        str     x7, [x6]
        subs    x5, x5, #1
        b.ne    3b
4:      mov     x25, x4                 // x25 = first op entry
        dsb     sy
        tlbi    alle3                   // before SCTLR_EL3 is tried with the new tables
        dsb     sy

        // Program every register of reg_table (registers a scenario leaves out are 0) and read
        // each back at once: QEMU drops the bits of features it does not implement.
        ldr     x10, =record
        mov     x0, #REC_SCEN
        stp     x0, x21, [x10]
        mov     x0, #NREG
        str     x0, [x10, #16]
        add     x14, x10, #24
        adr     x12, reg_table
        mov     x2, #HARNESS_SCTLR_EL3_LO
        movk    x2, #HARNESS_SCTLR_EL3_HI, lsl #16
        mov     x11, #0
5:      ldr     x1, [x3, x11, lsl #3]
        add     x13, x12, x11, lsl #4
        blr     x13                     // x0 = value read back
        str     x0, [x14, x11, lsl #3]
        add     x11, x11, #1
        cmp     x11, #NREG
        b.lo    5b
        isb
        mov     x0, #((3 + NREG) * 8)
        bl      emit

        // ---- per op -------------------------------------------------------------------------
op_loop:
        ldr     x0, [x22, #16]          // n_ops
        cmp     x26, x0
        b.hs    scenario_next
        // Nothing cached may survive from the previous op or scenario: invalidate EL3, EL2
        // and EL2&0, and all EL1&0 stage 1 and stage 2 entries (every VMID) of the
        // Security state SCR_EL3.NS selects (TLBI ALLE3, ALLE2, ALLE1, VMALLS12E1).
        dsb     sy
        tlbi    alle3
        tlbi    alle2
        tlbi    alle1
        tlbi    vmalls12e1
        dsb     sy
        // FAR_ELx and HPFAR_EL2 are written only by some exceptions: clear them so that an
        // exception which does not write them reports 0 instead of a stale value.
        msr     far_el1, xzr
        msr     far_el2, xzr
        msr     far_el3, xzr
        msr     hpfar_el2, xzr
        isb
        ldp     x9, x1, [x25]           // x9 = op index, x1 = VA (the AT operand register)
        ldr     x10, [x25, #16]         // x10 = PSTATE.PAN for this op
        adr     x11, at_table
        add     x11, x11, x9, lsl #3    // x11 = the op's stub
        lsl     x10, x10, #22           // PAN is bit 22 in SPSR_ELx and in the PAN register
        cmp     x28, #3
        b.eq    run_at_el3
        mov     x12, #SPSR_EL1H
        mov     x13, #SPSR_EL2H
        cmp     x28, #2
        csel    x12, x13, x12, eq
        orr     x12, x12, x10
        msr     spsr_el3, x12
        msr     elr_el3, x11
        eret                            // -> the stub at EL1h/EL2h, back via el3_lower_sync

run_at_el3:
        msr     pan, x10
        ldr     x12, [x22, #(SCEN_REGS + IDX_SCTLR_EL3 * 8)]
        msr     sctlr_el3, x12          // the scenario's SCTLR_EL3, for this op only
        isb
        br      x11                     // -> the stub, back via at_done or el3_current_sync

        // Every op comes back here at EL3: x6 = 0 (PAR_EL1 valid) or 1 (x1-x5 = exception).
        // Restore EL3's own SCTLR and PAN before touching memory.
el3_after_op:
        mov     x9, #HARNESS_SCTLR_EL3_LO
        movk    x9, #HARNESS_SCTLR_EL3_HI, lsl #16
        msr     sctlr_el3, x9
        msr     pan, xzr                // a trap to a higher EL keeps PSTATE.PAN
        isb
        cbnz    x6, 1f
        mrs     x1, par_el1
        mov     x2, #0
        mov     x3, #0
        mov     x4, #0
        mov     x5, #0
1:      ldr     x10, =record
        mov     x0, #REC_OP
        stp     x0, x21, [x10]
        orr     x0, x6, x5, lsl #8
        stp     x26, x0, [x10, #16]
        stp     x1, x2, [x10, #32]
        stp     x3, x4, [x10, #48]
        mov     x0, #64
        bl      emit
        add     x25, x25, #OP_ENTRY_SIZE
        add     x26, x26, #1
        b       op_loop

scenario_next:
        mov     x22, x25                // the next entry follows the last op
        add     x21, x21, #1
        b       scenario_loop

all_done:
        ldr     x10, =record
        mov     x0, #REC_END
        stp     x0, x20, [x10]
        stp     xzr, xzr, [x10, #16]
        mov     x0, #32
        bl      emit
        mov     x9, #0
        // fall through

        // SYS_EXIT with {ADP_Stopped_ApplicationExit, x9}: QEMU exits with status x9.
exit:
        ldr     x1, =params
        mov     x0, #(ADP_Stopped_ApplicationExit & 0xffff)
        movk    x0, #(ADP_Stopped_ApplicationExit >> 16), lsl #16
        stp     x0, x9, [x1]
        mov     x0, #SYS_EXIT
        hlt     #0xf000
        b       .

        // emit: SYS_WRITE x0 bytes of `record` to the output file.  Clobbers x0-x2.
emit:
        ldr     x1, =params
        ldr     x2, =record
        stp     x27, x2, [x1]
        str     x0, [x1, #16]
        mov     x0, #SYS_WRITE
        hlt     #0xf000
        mov     x9, #68
        cbnz    x0, exit                // SYS_WRITE returns the number of bytes not written
        ret

        .ltorg

        // ---- register table -----------------------------------------------------------------
        // Entry i (16 bytes) writes x1 to register i and returns its read-back value in x0.
        // Written from EL3, where HCR_EL2.E2H redirects nothing (with E2H=1 only accesses
        // made at EL2 are redirected): each name is the register itself.  The order is
        // driver.py's REGISTERS.
        .macro  reg_entry name
        .balign 16
        msr     \name, x1
        mrs     x0, \name
        ret
        .endm

        .balign 16
reg_table:
        reg_entry hcr_el2               //  0 HCR_EL2 first: RW, VM, TGE, E2H, ... as given
        reg_entry tcr_el1               //  1
        reg_entry tcr_el2               //  2
        reg_entry tcr_el3               //  3
        reg_entry ttbr0_el1             //  4
        reg_entry ttbr1_el1             //  5
        reg_entry ttbr0_el2             //  6
        reg_entry ttbr1_el2             //  7 (FEAT_VHE)
        reg_entry ttbr0_el3             //  8
        reg_entry mair_el1              //  9
        reg_entry mair_el2              // 10
        reg_entry mair_el3              // 11
        reg_entry vtcr_el2              // 12
        reg_entry vttbr_el2             // 13
        .ifdef  V94                     // QEMU >= 11 (binutils 2.40 lacks the names)
        reg_entry S3_4_C1_C2_2          // HCRX_EL2
        reg_entry S3_0_C2_C0_3          // TCR2_EL1
        reg_entry S3_4_C2_C0_3          // TCR2_EL2
        reg_entry S3_0_C10_C2_3         // PIR_EL1
        reg_entry S3_0_C10_C2_2         // PIRE0_EL1
        reg_entry S3_4_C10_C2_3         // PIR_EL2
        reg_entry S3_4_C10_C2_2         // PIRE0_EL2
        reg_entry S3_4_C10_C2_5         // S2PIR_EL2
        reg_entry S3_0_C10_C2_1         // MAIR2_EL1
        reg_entry S3_4_C10_C1_1         // MAIR2_EL2
        reg_entry S3_6_C10_C2_3         // PIR_EL3 (the EL3 regime: TCR_EL3.PIE, bit 35)
        reg_entry S3_6_C10_C1_1         // MAIR2_EL3 (TCR_EL3.AIE, bit 37)
        .equ    N_V94, 12
        .else
        .equ    N_V94, 0
        .endif
        reg_entry sctlr_el1             // 14 the SCTLRs last, once the tables are in place
        reg_entry sctlr_el2             // 15
        .balign 16                      // 16 SCTLR_EL3: read back, then EL3's own value
        msr     sctlr_el3, x1           //    again at once (with M=1 the scenario's EL3
        mrs     x0, sctlr_el3           //    tables must map the harness code for these
        b       sctlr_el3_restore       //    instructions, as for its EL3 ops)
        .balign 16
reg_table_end:
        .equ    NREG, (reg_table_end - reg_table) / 16
        .equ    IDX_SCTLR_EL3, 16 + N_V94

sctlr_el3_restore:
        msr     sctlr_el3, x2
        isb
        ret

        // ---- AT (and TLBI) stubs ------------------------------------------------------------
        // Entry i (8 bytes) is driver.py's OPS[i]: the AT instruction on the VA in x1.  The
        // FEAT_ATS1A ops, unknown to binutils 2.40, are written as SYS: AT S1E1A is
        // SYS #0, C7, C9, #2, AT S1E2A is SYS #4, C7, C9, #2, AT S1E3A SYS #6, C7, C9, #2.
        .balign 8
at_table:
        at      s1e1r, x1               //  0
        b       at_done
        at      s1e1w, x1               //  1
        b       at_done
        at      s1e0r, x1               //  2
        b       at_done
        at      s1e0w, x1               //  3
        b       at_done
        at      s1e1rp, x1              //  4 (FEAT_PAN2)
        b       at_done
        at      s1e1wp, x1              //  5
        b       at_done
        sys     #0, c7, c9, #2, x1      //  6 AT S1E1A (FEAT_ATS1A)
        b       at_done
        at      s1e2r, x1               //  7
        b       at_done
        at      s1e2w, x1               //  8
        b       at_done
        sys     #4, c7, c9, #2, x1      //  9 AT S1E2A (FEAT_ATS1A)
        b       at_done
        at      s12e1r, x1              // 10
        b       at_done
        at      s12e1w, x1              // 11
        b       at_done
        at      s12e0r, x1              // 12
        b       at_done
        at      s12e0w, x1              // 13
        b       at_done
        at      s1e3r, x1               // 14
        b       at_done
        at      s1e3w, x1               // 15
        b       at_done
        // TLBI stubs (driver.py's OPS "TLBI ...", in atlab.tlb.TlbiOp order): only whether
        // and where they trap is compared; the PAR read after one is meaningless.
        tlbi    vmalle1                 // 16
        b       at_done
        tlbi    vmalle1is               // 17
        b       at_done
        tlbi    vae1, x1                // 18
        b       at_done
        tlbi    vae1is, x1              // 19
        b       at_done
        tlbi    aside1, x1              // 20
        b       at_done
        tlbi    aside1is, x1            // 21
        b       at_done
        tlbi    vaae1, x1               // 22
        b       at_done
        tlbi    vaae1is, x1             // 23
        b       at_done
        tlbi    vale1, x1               // 24
        b       at_done
        tlbi    vale1is, x1             // 25
        b       at_done
        tlbi    vaale1, x1              // 26
        b       at_done
        tlbi    vaale1is, x1            // 27
        b       at_done
        tlbi    ipas2e1is, x1           // 28
        b       at_done
        tlbi    ipas2le1is, x1          // 29
        b       at_done
        tlbi    ipas2e1, x1             // 30
        b       at_done
        tlbi    ipas2le1, x1            // 31
        b       at_done
        tlbi    alle2is                 // 32
        b       at_done
        tlbi    vae2is, x1              // 33
        b       at_done
        tlbi    alle1is                 // 34
        b       at_done
        tlbi    vale2is, x1             // 35
        b       at_done
        tlbi    vmalls12e1is            // 36
        b       at_done
        tlbi    alle2                   // 37
        b       at_done
        tlbi    vae2, x1                // 38
        b       at_done
        tlbi    alle1                   // 39
        b       at_done
        tlbi    vale2, x1               // 40
        b       at_done
        tlbi    vmalls12e1              // 41
        b       at_done
        sys     #6, c7, c9, #2, x1      // 42 AT S1E3A (FEAT_ATS1A; driver.py's LATE_AT_OPS)
        b       at_done
at_done:
        isb                             // PAR_EL1 is read by EL3 after this
        mov     x6, #0
        mrs     x9, CurrentEL
        cmp     x9, #(3 << 2)
        b.eq    el3_after_op
        smc     #0                      // from EL1 (or EL2 if HCR_EL2.TSC traps it) to EL3
at_table_end:

        // ---- EL1/EL2 vectors (VBAR_EL1 and VBAR_EL2) ----------------------------------------
        // Any exception an op takes to EL1 or EL2 is reported to EL3.  Only system registers
        // are read: with E2H=1 at EL2 the *_EL2 names still reach the EL2 registers.
        .macro  vent target
        .balign 128
        b       \target
        .endm

        .balign 2048
lower_vectors:
        .rept   16
        vent    lower_handler
        .endr

lower_handler:
        mrs     x9, CurrentEL
        cmp     x9, #(2 << 2)
        b.eq    1f
        mrs     x1, esr_el1
        mrs     x2, far_el1
        mov     x3, #0
        mrs     x4, elr_el1
        mov     x5, #1
        mov     x6, #1
        smc     #0
1:      mrs     x9, esr_el2
        lsr     x10, x9, #26
        cmp     x10, #EC_SMC64          // EL1's own return SMC, trapped by HCR_EL2.TSC=1:
        b.eq    2f                      // pass x0-x6 on unchanged
        mov     x1, x9
        mrs     x2, far_el2
        mrs     x3, hpfar_el2
        mrs     x4, elr_el2
        mov     x5, #2
        mov     x6, #1
2:      smc     #0

        // ---- EL3 vectors --------------------------------------------------------------------
        .macro  vent3 target, offset
        .balign 128
        mov     x7, #\offset
        b       \target
        .endm

        .balign 2048
el3_vectors:
        vent3   el3_unexpected, 0x000   // current EL with SP_EL0: never used
        vent3   el3_unexpected, 0x080
        vent3   el3_unexpected, 0x100
        vent3   el3_unexpected, 0x180
        vent3   el3_current_sync, 0x200 // current EL with SP_EL3: an el=3 op's exception
        vent3   el3_unexpected, 0x280
        vent3   el3_unexpected, 0x300
        vent3   el3_unexpected, 0x380
        vent3   el3_lower_sync, 0x400   // lower EL, AArch64: the stubs' SMC #0
        vent3   el3_unexpected, 0x480
        vent3   el3_unexpected, 0x500
        vent3   el3_unexpected, 0x580
        vent3   el3_unexpected, 0x600   // lower EL, AArch32: never used
        vent3   el3_unexpected, 0x680
        vent3   el3_unexpected, 0x700
        vent3   el3_unexpected, 0x780

el3_lower_sync:
        mrs     x9, esr_el3
        lsr     x10, x9, #26
        cmp     x10, #EC_SMC64
        b.eq    el3_after_op            // the report of a stub or of a lower EL's vector
        mov     x1, x9                  // any other exception a lower EL took to EL3
        mrs     x2, far_el3
        mov     x3, #0
        mrs     x4, elr_el3
        mov     x5, #3
        mov     x6, #1
        b       el3_after_op

el3_current_sync:
        mrs     x4, elr_el3             // only an op stub may fault at EL3
        adr     x9, at_table
        cmp     x4, x9
        b.lo    el3_unexpected
        adr     x9, at_table_end
        cmp     x4, x9
        b.hs    el3_unexpected
        mrs     x1, esr_el3
        mrs     x2, far_el3
        mov     x3, #0
        mov     x5, #3
        mov     x6, #1
        b       el3_after_op

el3_unexpected:                         // a harness bug or a scenario that breaks EL3:
        mov     x9, #HARNESS_SCTLR_EL3_LO       // report it and stop
        movk    x9, #HARNESS_SCTLR_EL3_HI, lsl #16
        msr     sctlr_el3, x9
        isb
        ldr     x10, =record
        mov     x0, #REC_FATAL
        stp     x0, x21, [x10]
        stp     x26, x7, [x10, #16]
        mrs     x0, esr_el3
        mrs     x1, elr_el3
        stp     x0, x1, [x10, #32]
        mrs     x0, far_el3
        mrs     x1, spsr_el3
        stp     x0, x1, [x10, #48]
        mov     x0, #64
        bl      emit
        mov     x9, #67
        b       exit

        .ltorg

        // ---- scratch (EL3 only) -------------------------------------------------------------
        .balign 64
params: .space  32                      // semihosting parameter block
record: .space  (3 + NREG) * 8          // the record being written
harness_end:                            // driver.py checks that the image fits HARNESS_SIZE
