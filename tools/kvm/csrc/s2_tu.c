/*
 * atlab tools/kvm: the translation unit that holds the stage 2 walker of KVM's
 * arch/arm64/kvm/nested.c (from `struct s2_walk_info` to the end of kvm_walk_nested_s2(),
 * cut from the kernel tree into build/ at build time, with a #line so that WARN
 * locations name nested.c's own lines).
 */
#include <linux/kvm_host.h>

#include "nested_s2.c"
