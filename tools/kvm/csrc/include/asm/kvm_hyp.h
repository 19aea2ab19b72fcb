/* atlab tools/kvm shim: everything at.c needs from <asm/kvm_hyp.h> is in the shim <linux/kvm_host.h>. */
#include <linux/kvm_host.h>
