/* atlab tools/kvm: the few configuration symbols the arm64 headers need (4K pages, 48-bit VA/PA). */
#define CONFIG_ARM64 1
#define CONFIG_64BIT 1
#define CONFIG_PHYS_ADDR_T_64BIT 1
#define CONFIG_ARM64_4K_PAGES 1
#define CONFIG_PAGE_SHIFT 12
#define CONFIG_ARM64_PAGE_SHIFT 12
#define CONFIG_ARM64_VA_BITS 48
#define CONFIG_ARM64_PA_BITS 48
#define CONFIG_PGTABLE_LEVELS 4
#define CONFIG_ARM64_CONT_PTE_SHIFT 4
#define CONFIG_ARM64_CONT_PMD_SHIFT 4
#define CONFIG_NR_CPUS 4
#define CONFIG_KVM 1
