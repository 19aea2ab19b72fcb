/*
 * atlab tools/kvm shim: arm64 longs are 64 bits. Newer trees' <uapi/asm/bitsperlong.h> say 32
 * for a __KERNEL__ build on anything but __aarch64__ (the compat vDSO); this build is x86-64.
 */
#ifndef __ASM_BITSPERLONG_H
#define __ASM_BITSPERLONG_H
#define __BITS_PER_LONG 64
#include <asm-generic/bitsperlong.h>
#endif
