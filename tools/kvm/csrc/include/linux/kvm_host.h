/*
 * atlab tools/kvm shim: stands in for <linux/kvm_host.h> (and, through the other files
 * of this directory, for <asm/kvm_hyp.h>, <asm/kvm_mmu.h>, <asm/kvm_emulate.h> and
 * <asm/kvm_pgtable.h>) so that arch/arm64/kvm/at.c and the stage 2 walker of
 * arch/arm64/kvm/nested.c compile unchanged as userspace code.
 *
 * Written for atlab; it contains no kernel code. The kernel's own headers that compile
 * in userspace (register, ESR, HCR, TCR and descriptor definitions, bitfield helpers,
 * <asm/kvm_nested.h>) are used as they are, from the tree given at build time.
 *
 * The model: one vCPU whose system registers live in one array indexed by the tree's
 * enum vcpu_sysreg, holding the guest's architectural values (no VNCR sanitisation);
 * ID registers by encoding; guest memory, "hardware" registers, WARN and BUG go to the
 * driver through kvmat_api.h.
 */
#ifndef KVMAT_SHIM_KVM_HOST_H
#define KVMAT_SHIM_KVM_HOST_H

#include <linux/types.h>
#include <linux/bitfield.h>
#include <linux/bitops.h>
#include <linux/minmax.h>
#include <linux/sizes.h>
#include <linux/errno.h>
#include <asm/byteorder.h>
#include <asm/pgtable-types.h>
#include <asm/sysreg.h>
#include <asm/esr.h>
#include <asm/kvm_arm.h>
#include <asm/pgtable-hwdef.h>
#include <asm/ptrace.h>
#include <asm/pgtable-prot.h>

#include "kvmat_api.h"

typedef u64 gpa_t;
typedef u64 gfn_t;
typedef u64 kvm_pfn_t;

/* ---- the vCPU's system registers: the tree's own enum ---------------------------- */
/* VNCR(r) places r at its VNCR page offset in the kernel; one flat index is enough here. */
#define VNCR(r)		r
#define MARKER(m)	m
#include "vcpu_sysreg_enum.h"	/* cut from the tree's asm/kvm_host.h at build time */

/* ---- the objects at.c and nested.c touch -------------------------------------------- */
struct kvm_arch;

struct kvm_pgtable;

struct kvm_s2_mmu {
	struct kvm_arch *arch;
	u64 vtcr;
	u64 vttbr;
	u64 tlb_vtcr;			/* compute_tlb_inval_range(): L1's VTCR_EL2 */
	struct kvm_pgtable *pgt;	/* the shadow stage 2: `shadow_leaf` lines */
};

struct kvm_arch {
	struct kvm_s2_mmu mmu;
};

struct kvm {
	int mmu_lock;
	int srcu;
	struct kvm_arch arch;
};

struct kvm_vcpu {
	struct kvm *kvm;
	struct {
		u64 hcr_el2;	/* the HCR_EL2 L0 runs the guest with: the `hw HCR_EL2` value */
		struct {
			void *vncr_array;	/* __compute_hcr() loads it into VNCR_EL2: unused */
		} ctxt;
	} arch;
	u64 sys_regs[NR_SYS_REGS];
	unsigned long cpsr;
	u64 esr;
};

/* Features of the host CPU and of the vCPU: all present (a host with FEAT_NV1, a vCPU with EL2). */
#define cpus_have_final_cap(cap)	true
#define vcpu_has_feature(vcpu, f)	((void)(vcpu), true)

extern int kvmat_written_flag;

/* One array, the guest's architectural values; writes to PAR_EL1 are recorded. */
#define __vcpu_sys_reg(v, r)	((v)->sys_regs[(r)])

static inline u64 vcpu_read_sys_reg(const struct kvm_vcpu *vcpu, int reg)
{
	return vcpu->sys_regs[reg];
}

static inline void vcpu_write_sys_reg(struct kvm_vcpu *vcpu, u64 val, int reg)
{
	vcpu->sys_regs[reg] = val;
	if (reg == PAR_EL1)
		kvmat_written_flag = 1;
}

static inline bool vcpu_el2_e2h_is_set(const struct kvm_vcpu *vcpu)
{
	return vcpu->sys_regs[HCR_EL2] & HCR_E2H;
}

static inline bool vcpu_el2_tge_is_set(const struct kvm_vcpu *vcpu)
{
	return vcpu->sys_regs[HCR_EL2] & HCR_TGE;
}

/* The trapped AT comes from vEL2: the vCPU is in its hypervisor context. */
static inline bool is_hyp_ctxt(const struct kvm_vcpu *vcpu)
{
	(void)vcpu;
	return true;
}

static inline unsigned long *vcpu_cpsr(const struct kvm_vcpu *vcpu)
{
	return (unsigned long *)&vcpu->cpsr;
}

static inline u64 kvm_vcpu_get_esr(const struct kvm_vcpu *vcpu)
{
	return vcpu->esr;
}

/* ---- guest memory ------------------------------------------------------------------- */
static inline int kvm_read_guest(struct kvm *kvm, u64 gpa, void *data, unsigned long len)
{
	(void)kvm;
	return shim_read_guest(gpa, data, len);
}

/* ---- ID registers and the feature tests over them ------------------------------------ */
u64 kvmat_read_id_reg(u32 encoding);
u64 kvm_read_vm_id_reg(const struct kvm *kvm, u32 reg);	/* newer trees read them directly */

#define kvmat_id_field(kvm, id, fld)						\
	((void)(kvm), (u64)FIELD_GET(id##_##fld##_MASK, kvmat_read_id_reg(SYS_##id)))
#define kvmat_sext(val, id, fld)	sign_extend64((u64)(val), id##_##fld##_WIDTH - 1)

/* ">=" on the field, signed or unsigned as the tree's sysreg description says */
#define kvm_has_feat(kvm, id, fld, lim)						\
	(id##_##fld##_SIGNED ?							\
	 (kvmat_sext(kvmat_id_field(kvm, id, fld), id, fld) >=			\
	  kvmat_sext(id##_##fld##_##lim, id, fld)) :				\
	 (kvmat_id_field(kvm, id, fld) >= (u64)(id##_##fld##_##lim)))
#define kvm_has_feat_enum(kvm, id, fld, val)					\
	(kvmat_id_field(kvm, id, fld) == (u64)(id##_##fld##_##val))

/* Feature tests of newer trees (their asm/kvm_host.h), over the same ID register fields. */
#define system_supports_poe()	true
#if defined(ID_AA64MMFR3_EL1_TCRX_MASK) && !defined(kvm_has_tcr2)
#define kvm_has_tcr2(k)		kvm_has_feat((k), ID_AA64MMFR3_EL1, TCRX, IMP)
#endif
#if defined(ID_AA64MMFR3_EL1_S1PIE_MASK) && !defined(kvm_has_s1pie)
#define kvm_has_s1pie(k)	kvm_has_feat((k), ID_AA64MMFR3_EL1, S1PIE, IMP)
#endif
#if defined(ID_AA64MMFR3_EL1_S1POE_MASK) && !defined(kvm_has_s1poe)
#define kvm_has_s1poe(k)	(system_supports_poe() && kvm_has_feat((k), ID_AA64MMFR3_EL1, S1POE, IMP))
#endif
#if defined(ID_AA64MMFR3_EL1_SCTLRX_MASK) && !defined(kvm_has_sctlr2)
#define kvm_has_sctlr2(k)	kvm_has_feat((k), ID_AA64MMFR3_EL1, SCTLRX, IMP)
#endif

/* both return the host IPA limit, as 6.12's kvm_get_pa_bits() does (defined in at_tu.c) */
u32 get_kvm_ipa_limit(void);
u32 kvm_get_pa_bits(struct kvm *kvm);

/* ---- locks, SRCU, guards: one vCPU, one thread ----------------------------------------- */
#ifdef guard
#undef guard
#endif
#ifdef scoped_guard
#undef scoped_guard
#endif
#define kvmat_guard_write_lock_irqsave(lock)	((void)(lock))
#define kvmat_guard_srcu(lock)			((void)(lock))
#define guard(name)	kvmat_guard_##name
#define scoped_guard(name, ...)							\
	for (int kvmat_once = ((void)(__VA_ARGS__), 1); kvmat_once; kvmat_once = 0)
#define srcu_read_lock(s)		((void)(s), 0)
#define srcu_read_unlock(s, idx)	((void)(s), (void)(idx))
#define write_lock(l)			((void)(l))
#define write_unlock(l)			((void)(l))

/* ---- WARN and BUG ------------------------------------------------------------------- */
#ifdef WARN_ON
#undef WARN_ON
#endif
#ifdef WARN_ON_ONCE
#undef WARN_ON_ONCE
#endif
#ifdef BUG
#undef BUG
#endif
/* Every hit is recorded (ONCE is per op, not per boot): the driver reports file:line. */
#define WARN_ON(cond) ({							\
	int kvmat_c = !!(cond);							\
	if (kvmat_c)								\
		shim_warn(__FILE_NAME__, __LINE__);				\
	kvmat_c;								\
})
#define WARN_ON_ONCE(cond)	WARN_ON(cond)
#define BUG()			shim_bug(__FILE_NAME__, __LINE__)

/* ---- the hardware: registers, AT, PAR ----------------------------------------------- */
#define KVMAT_HW_hcr_el2	HWR_HCR_EL2
#define KVMAT_HW_vttbr_el2	HWR_VTTBR_EL2
#define KVMAT_HW_vtcr_el2	HWR_VTCR_EL2
#define KVMAT_HW_par_el1	HWR_PAR_EL1
#define KVMAT_HW_SYS_TTBR0	HWR_TTBR0_EL1
#define KVMAT_HW_SYS_TTBR1	HWR_TTBR1_EL1
#define KVMAT_HW_SYS_TCR	HWR_TCR_EL1
#define KVMAT_HW_SYS_MAIR	HWR_MAIR_EL1
#define KVMAT_HW_SYS_SCTLR	HWR_SCTLR_EL1
#define KVMAT_HW_SYS_TCR2	HWR_TCR2_EL1
#define KVMAT_HW_SYS_PIR	HWR_PIR_EL1
#define KVMAT_HW_SYS_PIRE0	HWR_PIRE0_EL1
#define KVMAT_HW_SYS_POR	HWR_POR_EL1

u64 kvmat_read_sysreg_s(u32 encoding);
void kvmat_write_sysreg_s(u64 val, u32 encoding);

#undef read_sysreg
#undef write_sysreg
#undef read_sysreg_s
#undef write_sysreg_s
#undef read_sysreg_par
#undef isb
#undef write_sysreg_hcr
#define read_sysreg(r)		((u64)shim_hw_read(KVMAT_HW_##r))
#define write_sysreg(v, r)	shim_hw_write(KVMAT_HW_##r, (u64)(v))
#define read_sysreg_el1(r)	((u64)shim_hw_read(KVMAT_HW_##r))
#define write_sysreg_el1(v, r)	shim_hw_write(KVMAT_HW_##r, (u64)(v))
#define read_sysreg_s(r)	kvmat_read_sysreg_s(r)
#define write_sysreg_s(v, r)	kvmat_write_sysreg_s((u64)(v), (r))
#define read_sysreg_par()	((u64)shim_hw_read(HWR_PAR_EL1))
#define isb()			do { } while (0)
#define __kvm_at(op, va)	shim_hw_at((op), (va))
#define write_sysreg_hcr(v)	shim_hw_write(HWR_HCR_EL2, (u64)(v))

/* ---- the nested side: the tree's own <asm/kvm_nested.h> ------------------------------- */
/* newer kvm_nested.h: the TLBI operand's ASID field (asm/tlbflush.h, not included) */
#ifndef TLBIR_ASID_MASK
#define TLBIR_ASID_MASK		GENMASK_ULL(63, 48)
#endif
#include <asm/kvm_nested.h>

struct kvm_s2_mmu *lookup_s2_mmu(struct kvm_vcpu *vcpu);
void kvmat_load_stage2(struct kvm_s2_mmu *mmu);
/* __load_stage2(mmu, arch) in 6.12, __load_stage2(mmu) later */
#define __load_stage2(mmu, ...)	kvmat_load_stage2(mmu)

/*
 * Newer at.c: the hardware descriptor update (__kvm_at_swap_desc) is ours (a compare-and-swap
 * on the driver's guest RAM); the kernel's definition is renamed at build time to an unused
 * static function, whose helpers' inline assembly is then never emitted. What those helpers
 * name must still parse:
 */
#if __has_include(<asm/lsui.h>)
#include <asm/lsui.h>
#endif
#ifndef _ASM_EXTABLE_UACCESS_ERR
#define _ASM_EXTABLE_UACCESS_ERR(insn, fixup, err)	""
#endif
#ifndef __LSE_PREAMBLE
#define __LSE_PREAMBLE		""
#endif
#ifndef __LSUI_PREAMBLE
#define __LSUI_PREAMBLE		""
#endif
#define uaccess_ttbr0_enable()		do { } while (0)
#define uaccess_ttbr0_disable()		do { } while (0)
#define uaccess_enable_privileged()	do { } while (0)
#define uaccess_disable_privileged()	do { } while (0)

/* Inline assembly that is left in at.c (errata workarounds) becomes nothing. */
#define asm(...)	do { } while (0)

#endif
