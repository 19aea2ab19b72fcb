/*
 * atlab tools/kvm: the translation unit that holds KVM's arch/arm64/kvm/at.c, unchanged
 * (copied from the kernel tree into build/ at build time), followed by our glue: the vCPU,
 * its ID registers, the trapped-AT dispatch of arch/arm64/kvm/sys_regs.c, and the
 * fast path's hooks (lookup_s2_mmu, __load_stage2, PSTATE.PAN as a system register).
 */
#include <linux/kvm_host.h>

#include "at.c"

/* ---- the one VM and vCPU ------------------------------------------------------------ */
static struct kvm kvmat_kvm;
static struct kvm_vcpu kvmat_vcpu = { .kvm = &kvmat_kvm };
int kvmat_written_flag;

u32 get_kvm_ipa_limit(void)
{
	return shim_ipa_limit();
}

u32 kvm_get_pa_bits(struct kvm *kvm)
{
	(void)kvm;
	return shim_ipa_limit();
}

/* ---- system registers by name: generated from the tree's enum vcpu_sysreg ------------ */
static const struct {
	const char *name;
	int idx;
} kvmat_regs[] = {
#include "vcpu_sysreg_names.h"
};

int kvmat_reg_index(const char *name)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(kvmat_regs); i++)
		if (!__builtin_strcmp(kvmat_regs[i].name, name))
			return kvmat_regs[i].idx;
	return -1;
}

void kvmat_set_reg(int idx, unsigned long long val)
{
	kvmat_vcpu.sys_regs[idx] = val;
}

unsigned long long kvmat_get_reg(int idx)
{
	return kvmat_vcpu.sys_regs[idx];
}

int kvmat_par_index(void)
{
	return PAR_EL1;
}

void kvmat_set_cpsr(unsigned long long val)
{
	kvmat_vcpu.cpsr = val;
}

void kvmat_set_esr(unsigned long long val)
{
	kvmat_vcpu.esr = val;
}

int kvmat_par_written(void)
{
	return kvmat_written_flag;
}

void kvmat_clear_written(void)
{
	kvmat_written_flag = 0;
}

/* ---- ID registers (what kvm_has_feat reads), by encoding -------------------------------- */
static struct {
	const char *name;
	u32 encoding;
	u64 val;
} kvmat_ids[] = {
#define KVMAT_ID(r)	{ #r, SYS_##r, 0 },
	KVMAT_ID(ID_AA64PFR0_EL1)
	KVMAT_ID(ID_AA64PFR1_EL1)
#ifdef SYS_ID_AA64PFR2_EL1
	KVMAT_ID(ID_AA64PFR2_EL1)
#endif
	KVMAT_ID(ID_AA64ZFR0_EL1)
	KVMAT_ID(ID_AA64SMFR0_EL1)
#ifdef SYS_ID_AA64FPFR0_EL1
	KVMAT_ID(ID_AA64FPFR0_EL1)
#endif
	KVMAT_ID(ID_AA64DFR0_EL1)
	KVMAT_ID(ID_AA64DFR1_EL1)
	KVMAT_ID(ID_AA64ISAR0_EL1)
	KVMAT_ID(ID_AA64ISAR1_EL1)
	KVMAT_ID(ID_AA64ISAR2_EL1)
#ifdef SYS_ID_AA64ISAR3_EL1
	KVMAT_ID(ID_AA64ISAR3_EL1)
#endif
	KVMAT_ID(ID_AA64MMFR0_EL1)
	KVMAT_ID(ID_AA64MMFR1_EL1)
	KVMAT_ID(ID_AA64MMFR2_EL1)
#ifdef SYS_ID_AA64MMFR3_EL1
	KVMAT_ID(ID_AA64MMFR3_EL1)
#endif
#ifdef SYS_ID_AA64MMFR4_EL1
	KVMAT_ID(ID_AA64MMFR4_EL1)
#endif
#undef KVMAT_ID
};

u64 kvmat_read_id_reg(u32 encoding)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(kvmat_ids); i++)
		if (kvmat_ids[i].encoding == encoding)
			return kvmat_ids[i].val;
	return 0;
}

u64 kvm_read_vm_id_reg(const struct kvm *kvm, u32 reg)
{
	(void)kvm;
	return kvmat_read_id_reg(reg);
}

int kvmat_id_set(const char *name, unsigned long long val)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(kvmat_ids); i++) {
		if (!__builtin_strcmp(kvmat_ids[i].name, name)) {
			kvmat_ids[i].val = val;
			return 0;
		}
	}
	return -1;
}

void kvmat_reset(void)
{
	__builtin_memset(kvmat_vcpu.sys_regs, 0, sizeof(kvmat_vcpu.sys_regs));
	kvmat_vcpu.cpsr = 0;
	kvmat_vcpu.esr = 0;
	kvmat_written_flag = 0;
	for (unsigned int i = 0; i < ARRAY_SIZE(kvmat_ids); i++)
		kvmat_ids[i].val = 0;
}

/* ---- the fast path's hooks ------------------------------------------------------------ */
/*
 * lookup_s2_mmu(): "fails" mode finds no shadow stage 2 MMU (at.c then goes straight to the
 * slow path); "hardware" mode finds one, whose __load_stage2() loads VTTBR_EL2 with the
 * value the scenario gave as `hw SHADOW_VTTBR_EL2` (default: its `hw VTTBR_EL2`) and
 * leaves VTCR_EL2 as it was (the VM's VTCR is shared by all its stage 2 MMUs).
 */
static struct kvm_s2_mmu kvmat_shadow_mmu = { .arch = &kvmat_kvm.arch };

struct kvm_s2_mmu *lookup_s2_mmu(struct kvm_vcpu *vcpu)
{
	(void)vcpu;
	return shim_hardware_mode() ? &kvmat_shadow_mmu : NULL;
}

void kvmat_load_stage2(struct kvm_s2_mmu *mmu)
{
	(void)mmu;
	shim_hw_write(HWR_VTTBR_EL2, shim_hw_read(HWR_SHADOW_VTTBR_EL2));
}

/* MSR/MRS PAN: the register holds PSTATE.PAN at bit 22 (PSR_PAN_BIT), as the instruction does. */
u64 kvmat_read_sysreg_s(u32 encoding)
{
	if (encoding == SYS_PSTATE_PAN)
		return shim_hw_read(HWR_PSTATE_PAN) ? PSR_PAN_BIT : 0;
#ifdef SYS_POR_EL0
	if (encoding == SYS_POR_EL0)
		return shim_hw_read(HWR_POR_EL0);
#endif
	shim_bug("kvmat-shim(read_sysreg_s)", (int)encoding);
}

void kvmat_write_sysreg_s(u64 val, u32 encoding)
{
#ifdef SYS_VNCR_EL2
	if (encoding == SYS_VNCR_EL2)
		return;	/* __compute_hcr(): the VNCR page is not modelled */
#endif
	if (encoding == SYS_PSTATE_PAN) {
		shim_hw_write(HWR_PSTATE_PAN, !!(val & PSR_PAN_BIT));
		return;
	}
#ifdef SYS_POR_EL0
	if (encoding == SYS_POR_EL0) {
		shim_hw_write(HWR_POR_EL0, val);
		return;
	}
#endif
	shim_bug("kvmat-shim(write_sysreg_s)", (int)encoding);
}

#ifdef KVMAT_SWAP_DESC_RENAMED
/* Newer at.c (hardware AF/dirty updates): the descriptor update, on the driver's guest RAM. */
int __kvm_at_swap_desc(struct kvm *kvm, gpa_t ipa, u64 old, u64 new)
{
	(void)kvm;
	return shim_swap_guest(ipa, old, new);
}
#endif

/* ---- the trapped AT, dispatched as arch/arm64/kvm/sys_regs.c does ------------------------- */
enum kvmat_handler { KVMAT_H_NONE, KVMAT_H_s1e01, KVMAT_H_s1e2, KVMAT_H_s12 };

static const struct {
	const char *name;
	u32 encoding;
} kvmat_ops[] = {
#define KVMAT_OP(o)	{ #o, OP_AT_##o },
	KVMAT_OP(S1E1R) KVMAT_OP(S1E1W) KVMAT_OP(S1E0R) KVMAT_OP(S1E0W)
	KVMAT_OP(S1E1RP) KVMAT_OP(S1E1WP)
#ifdef OP_AT_S1E1A
	KVMAT_OP(S1E1A)
#endif
	KVMAT_OP(S1E2R) KVMAT_OP(S1E2W)
#ifdef OP_AT_S1E2A
	KVMAT_OP(S1E2A)
#endif
	KVMAT_OP(S12E1R) KVMAT_OP(S12E1W) KVMAT_OP(S12E0R) KVMAT_OP(S12E0W)
#undef KVMAT_OP
};

/* The handler the tree's sys_regs.c gives each AT (generated from its SYS_INSN(AT_*) lines). */
static const struct {
	u32 encoding;
	enum kvmat_handler handler;
} kvmat_handlers[] = {
#define KVMAT_HANDLER(o, h)	{ OP_AT_##o, KVMAT_H_##h },
#include "at_handlers.h"
#undef KVMAT_HANDLER
};

const char *kvmat_op_name(unsigned int encoding)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(kvmat_ops); i++)
		if (kvmat_ops[i].encoding == encoding)
			return kvmat_ops[i].name;
	return "?";
}

int kvmat_at(const char *name, unsigned long long va)
{
	enum kvmat_handler handler = KVMAT_H_NONE;
	u32 op = 0;
	bool found = false;

	for (unsigned int i = 0; i < ARRAY_SIZE(kvmat_ops); i++) {
		if (!__builtin_strcmp(kvmat_ops[i].name, name)) {
			op = kvmat_ops[i].encoding;
			found = true;
		}
	}
	if (!found)
		return KVMAT_BADOP;
	for (unsigned int i = 0; i < ARRAY_SIZE(kvmat_handlers); i++)
		if (kvmat_handlers[i].encoding == op)
			handler = kvmat_handlers[i].handler;
	kvmat_vcpu.arch.hcr_el2 = shim_hw_read(HWR_HCR_EL2);

	switch (handler) {
	case KVMAT_H_s1e01:
		__kvm_at_s1e01(&kvmat_vcpu, op, va);
		return KVMAT_OK;
	case KVMAT_H_s1e2:
#if defined(OP_AT_S1E2A) && defined(ID_AA64ISAR2_EL1_ATS1A_MASK)
		/* handle_at_s1e2(): no FGT for AT S1E2A, so KVM checks FEAT_ATS1A itself */
		if (op == OP_AT_S1E2A &&
		    !kvm_has_feat(kvmat_vcpu.kvm, ID_AA64ISAR2_EL1, ATS1A, IMP))
			return KVMAT_UNDEF;
#endif
		__kvm_at_s1e2(&kvmat_vcpu, op, va);
		return KVMAT_OK;
	case KVMAT_H_s12:
		__kvm_at_s12(&kvmat_vcpu, op, va);
		return KVMAT_OK;
	case KVMAT_H_NONE:
	default:
		/* no entry in sys_insn_descs: emulate_sys_reg() injects UNDEFINED */
		return KVMAT_UNDEF;
	}
}

/* The one vCPU, for the other translation units (hcr_tu.c). */
struct kvm_vcpu *kvmat_the_vcpu(void)
{
	return &kvmat_vcpu;
}

/* The one VM, for the other translation units (ttl_tu.c). */
struct kvm *kvmat_the_kvm(void)
{
	return &kvmat_kvm;
}
