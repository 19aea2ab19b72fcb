/* atlab tools/kvm shim: everything at.c needs from <asm/kvm_emulate.h> is in the shim <linux/kvm_host.h>. */
#include <linux/kvm_host.h>
