/*
 * atlab tools/kvm: the translation unit that holds how KVM sizes the shadow stage 2 range an
 * L1 TLBI IPAS2E1 (without TTL) unmaps: arch/arm64/kvm/nested.c from ttl_to_size() to the end
 * of compute_tlb_inval_range() (get_guest_mapping_ttl() between them), cut from the kernel
 * tree into build/ at build time.  The shadow stage 2 is the `shadow_leaf` lines (4KB leaves
 * with KVM's KVM_NV_GUEST_MAP_SZ level tag): kvm_pgtable_get_leaf() looks them up.
 */
#include <linux/kvm_host.h>
#include <asm/kvm_pgtable.h>

struct kvm *kvmat_the_kvm(void);

static inline struct kvm *kvmat_mmu_to_kvm(struct kvm_s2_mmu *mmu)
{
	(void)mmu;
	return kvmat_the_kvm();
}
#define kvm_s2_mmu_to_kvm(mmu)	kvmat_mmu_to_kvm(mmu)
/* one thread: the mmu_lock is always "held" */
#ifndef lockdep_assert_held_write
#define lockdep_assert_held_write(l)	do { (void)(l); } while (0)
#endif

#include "tlb_inval.c"

#define MAX_LEAVES 4096
static struct { u64 ipa; u64 pte; } leaves[MAX_LEAVES];
static int nleaves;

void kvmat_ttl_reset(void)
{
	nleaves = 0;
}

int kvmat_shadow_leaf(unsigned long long ipa, unsigned long long pte)
{
	if (nleaves == MAX_LEAVES)
		return -1;
	leaves[nleaves].ipa = ipa & ~0xfffULL;
	leaves[nleaves].pte = pte;
	nleaves++;
	return 0;
}

/* The shadow's 4KB leaf at addr (a valid PTE), or an invalid one: what the real walk gives. */
int kvm_pgtable_get_leaf(struct kvm_pgtable *pgt, u64 addr, kvm_pte_t *ptep, s8 *level)
{
	int i;

	(void)pgt;
	*ptep = 0;
	if (level)
		*level = 3;
	for (i = 0; i < nleaves; i++)
		if (leaves[i].ipa == (addr & ~0xfffULL))
			*ptep = leaves[i].pte;
	return 0;
}

/* compute_tlb_inval_range() for L1's VTCR_EL2 vtcr and TLBI IPAS2E1's operand xt. */
unsigned long long kvmat_tlb_inval_range(unsigned long long vtcr, unsigned long long xt)
{
#ifdef KVMAT_NO_TLB_INVAL
	(void)vtcr;
	(void)xt;
	return 0;
#else
	struct kvm_s2_mmu mmu = { .tlb_vtcr = vtcr, .pgt = NULL };

	return compute_tlb_inval_range(&mmu, xt);
#endif
}
