/* A minimal KVM guest for tools/realsys (issue 17, stage 2): run inside the booted VHE host,
 * it creates a VM with 2 MiB of RAM at IPA 0x80000000 and one vCPU that loops storing to the
 * pages at IPA 0x80010000 + k * 0x1000 (k = 0..31), so KVM builds stage 2 tables for them.
 * Built with Debian's gcc-aarch64-linux-gnu: aarch64-linux-gnu-gcc -static -O2. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GUEST_BASE 0x80000000UL
#define GUEST_SIZE (2UL << 20)

static const uint32_t guest_code[] = {
    0xd2b00001, /*     movz x1, #0x8000, lsl #16     x1 = 0x80000000 */
    0x91404021, /*     add  x1, x1, #0x10, lsl #12   x1 = 0x80010000 */
    0xd2800002, /*     movz x2, #0                   */
    0xf8226820, /* 1:  str  x0, [x1, x2]             */
    0x91000400, /*     add  x0, x0, #1               */
    0x91400442, /*     add  x2, x2, #1, lsl #12      next page */
    0xf240405f, /*     tst  x2, #0x1ffff             32 pages, then wrap */
    0x9a9f1042, /*     csel x2, x2, xzr, ne          */
    0x17fffffb, /*     b    1b                       */
};

static int fail(const char *what) {
    perror(what);
    return 1;
}

int main(void) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int kvm = open("/dev/kvm", O_RDWR);
    if (kvm < 0) return fail("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) return fail("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                        -1, 0);
    if (mem == MAP_FAILED) return fail("mmap");
    for (size_t i = 0; i < sizeof guest_code / sizeof guest_code[0]; i++)
        ((uint32_t *)mem)[i] = guest_code[i];
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = GUEST_BASE, .memory_size = GUEST_SIZE,
        .userspace_addr = (uint64_t)(uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) return fail("KVM_CREATE_VCPU");
    struct kvm_vcpu_init init;
    if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0) return fail("KVM_ARM_PREFERRED_TARGET");
    if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0) return fail("KVM_ARM_VCPU_INIT");
    uint64_t pc = GUEST_BASE;
    struct kvm_one_reg reg = {
        .id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
              (offsetof(struct kvm_regs, regs.pc) / sizeof(uint32_t)),
        .addr = (uint64_t)(uintptr_t)&pc};
    if (ioctl(vcpu, KVM_SET_ONE_REG, &reg) < 0) return fail("KVM_SET_ONE_REG pc");
    int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                               vcpu, 0);
    if (run == MAP_FAILED) return fail("mmap kvm_run");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("KVMGUEST-RUNNING setup %.3f s host_va %p\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           (void *)mem);
    fflush(stdout);
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) return fail("KVM_RUN");
        if (run->exit_reason != KVM_EXIT_INTR) {
            printf("KVMGUEST-EXIT reason %u\n", run->exit_reason);
            return 1;
        }
    }
}
