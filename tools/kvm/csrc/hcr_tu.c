/*
 * atlab tools/kvm: the translation unit that holds KVM's __compute_hcr() (the HCR_EL2 a VHE
 * host loads for a guest, arch/arm64/kvm/hyp/vhe/switch.c), cut from the kernel tree into
 * build/ at build time with NV_HCR_GUEST_EXCLUDE, made non-static so the driver can call it.
 */
#include <linux/kvm_host.h>

#include "compute_hcr.c"

struct kvm_vcpu *kvmat_the_vcpu(void);
unsigned long long kvmat_compute_hcr(unsigned long long base);

/* __compute_hcr() for the vCPU in its hypervisor context (is_hyp_ctxt() is true in this
 * build: the AT traps from vEL2), with vcpu->arch.hcr_el2 = base, KVM's own HCR_EL2 for the
 * guest; all ones when the tree has no __compute_hcr(). */
unsigned long long kvmat_compute_hcr(unsigned long long base)
{
#ifdef KVMAT_NO_COMPUTE_HCR
	(void)base;
	return ~0ULL;
#else
	struct kvm_vcpu *vcpu = kvmat_the_vcpu();

	vcpu->arch.hcr_el2 = base;
	return __compute_hcr(vcpu);
#endif
}
