/*
 * atlab tools/kvm shim: the tree's own <asm/kvm_pgtable.h> supplies the descriptor field
 * names newer at.c and kvm_nested.h use (KVM_PTE_*); it is included after the shim's
 * <linux/kvm_host.h> has defined what it needs. RCU is a no-op here (one thread).
 */
#include <linux/kvm_host.h>
#include <linux/rbtree_types.h>

struct kvm_mmu_memory_cache;
#define rcu_dereference_check(p, c)	(p)
#define rcu_dereference_raw(p)		(p)
#define rcu_read_lock()			do { } while (0)
#define rcu_read_unlock()		do { } while (0)
#define rcu_read_lock_held()		1

#include_next <asm/kvm_pgtable.h>
