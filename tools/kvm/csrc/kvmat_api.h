/*
 * atlab tools/kvm: the interface between the driver (driver.c, built against libc)
 * and the translation units that hold KVM's code (at_tu.c, s2_tu.c, built against
 * the kernel tree's headers and our shim). Only plain C types cross it.
 */
#ifndef KVMAT_API_H
#define KVMAT_API_H

/* "Hardware" registers: what the CPU holds while KVM handles the trap. */
enum kvmat_hwreg {
	HWR_HCR_EL2,
	HWR_SCTLR_EL1,
	HWR_TCR_EL1,
	HWR_TTBR0_EL1,
	HWR_TTBR1_EL1,
	HWR_MAIR_EL1,
	HWR_VTTBR_EL2,
	HWR_VTCR_EL2,
	HWR_PSTATE_PAN,
	HWR_PAR_EL1,
	HWR_SHADOW_VTTBR_EL2,	/* not a register: what __load_stage2 puts in VTTBR_EL2 */
	/* saved and loaded by newer trees' fast path (TCR2, S1PIE, S1POE) */
	HWR_TCR2_EL1,
	HWR_PIR_EL1,
	HWR_PIRE0_EL1,
	HWR_POR_EL1,
	HWR_POR_EL0,
	HWR_COUNT
};

/* Results of kvmat_at(). */
#define KVMAT_OK	0
#define KVMAT_UNDEF	1
#define KVMAT_BADOP	(-1)

/* Provided by the KVM side (at_tu.c). */
void kvmat_reset(void);
int kvmat_reg_index(const char *name);		/* -1 when the tree has no such register */
void kvmat_set_reg(int idx, unsigned long long val);
unsigned long long kvmat_get_reg(int idx);
int kvmat_par_index(void);
int kvmat_id_set(const char *name, unsigned long long val);	/* -1: unknown ID register */
void kvmat_set_cpsr(unsigned long long val);
unsigned long long kvmat_compute_hcr(unsigned long long base);
void kvmat_ttl_reset(void);
int kvmat_shadow_leaf(unsigned long long ipa, unsigned long long pte);
unsigned long long kvmat_tlb_inval_range(unsigned long long vtcr, unsigned long long xt);
void kvmat_set_esr(unsigned long long val);
int kvmat_par_written(void);
void kvmat_clear_written(void);
int kvmat_at(const char *op, unsigned long long va);	/* KVMAT_OK, KVMAT_UNDEF, KVMAT_BADOP */
const char *kvmat_op_name(unsigned int encoding);	/* the AT op a sys_insn encoding names */

/* Provided by the driver (driver.c). */
int shim_read_guest(unsigned long long gpa, void *data, unsigned long len);	/* 0 or -EFAULT */
/* newer trees: compare-and-swap of one guest word; 0, -EAGAIN (changed) or -EINVAL (no RAM) */
int shim_swap_guest(unsigned long long gpa, unsigned long long old, unsigned long long new_);
void shim_warn(const char *file, int line);
__attribute__((noreturn)) void shim_bug(const char *file, int line);
unsigned long long shim_hw_read(int reg);
void shim_hw_write(int reg, unsigned long long val);
int shim_hw_at(unsigned int encoding, unsigned long long va);	/* nonzero: the AT faulted */
int shim_hardware_mode(void);
unsigned int shim_ipa_limit(void);

#endif
