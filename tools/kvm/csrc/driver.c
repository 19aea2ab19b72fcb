/*
 * atlab tools/kvm: kvm-at, the driver. Reads a scenario file, sets up the vCPU, guest RAM
 * and "hardware" registers, runs each trapped AT through KVM's at.c and prints one result
 * line per AT. The input/output contract is in tools/kvm/README.md.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmat_api.h"

#ifndef KVMAT_KERNEL_VERSION
#define KVMAT_KERNEL_VERSION "unknown"
#endif

typedef unsigned long long u64;

/* ---- input errors ------------------------------------------------------------------ */
static const char *in_name = "-";
static int in_line;

__attribute__((noreturn, format(printf, 1, 2)))
static void input_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "kvm-at: %s:%d: ", in_name, in_line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* ---- guest RAM: memslots and a sparse map of 64-bit words --------------------------- */
#define MAX_SLOTS 64
static struct { u64 base, size; } slots[MAX_SLOTS];
static int nslots;
static unsigned int ipa_limit = 48;

struct word { u64 addr; u64 val; unsigned int gen; };
static struct word *words;
static size_t nwords_cap;	/* power of two */
static size_t nwords_used;
static unsigned int gen = 1;

static size_t word_hash(u64 addr)
{
	u64 h = (addr >> 3) * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h >> 20) & (nwords_cap - 1);
}

static struct word *word_slot(u64 addr, int create)
{
	size_t i;

	if (!words) {
		nwords_cap = 1 << 14;
		words = calloc(nwords_cap, sizeof(*words));
		if (!words) {
			perror("kvm-at");
			exit(1);
		}
	}
	if (create && 2 * (nwords_used + 1) > nwords_cap) {
		struct word *old = words;
		size_t oldcap = nwords_cap;

		nwords_cap *= 2;
		words = calloc(nwords_cap, sizeof(*words));
		if (!words) {
			perror("kvm-at");
			exit(1);
		}
		for (size_t j = 0; j < oldcap; j++) {
			if (old[j].gen != gen)
				continue;
			i = word_hash(old[j].addr);
			while (words[i].gen == gen)
				i = (i + 1) & (nwords_cap - 1);
			words[i] = old[j];
		}
		free(old);
	}
	for (i = word_hash(addr); words[i].gen == gen; i = (i + 1) & (nwords_cap - 1))
		if (words[i].addr == addr)
			return &words[i];
	if (!create)
		return NULL;
	words[i].gen = gen;
	words[i].addr = addr;
	words[i].val = 0;
	nwords_used++;
	return &words[i];
}

static int in_ram(u64 gpa)
{
	if (!nslots)
		return ipa_limit >= 64 || gpa < (1ULL << ipa_limit);
	for (int i = 0; i < nslots; i++)
		if (gpa >= slots[i].base && gpa - slots[i].base < slots[i].size)
			return 1;
	return 0;
}

/* ---- per-op state and counters ------------------------------------------------------ */
static int hardware_mode;
static u64 hw_given[HWR_COUNT];	/* as the scenario gave them */
static u64 hw[HWR_COUNT];	/* live during an op */
static int hw_given_shadow;	/* `hw SHADOW_VTTBR_EL2` given */
static unsigned int n_reads, n_hwat;
static char warn_buf[1024];
static size_t warn_len;
static char bug_buf[256];
static jmp_buf bug_jmp;
static int bug_armed;

int shim_read_guest(unsigned long long gpa, void *data, unsigned long len)
{
	unsigned char *out = data;

	n_reads++;
	for (unsigned long k = 0; k < len; k++)
		if (!in_ram(gpa + k))
			return -EFAULT;
	for (unsigned long k = 0; k < len; k++) {
		u64 a = gpa + k;
		struct word *w = word_slot(a & ~7ULL, 0);

		out[k] = w ? (unsigned char)(w->val >> (8 * (a & 7))) : 0;
	}
	return 0;
}

int shim_swap_guest(unsigned long long gpa, unsigned long long old, unsigned long long new_)
{
	struct word *w;

	if ((gpa & 7) || !in_ram(gpa))
		return -EINVAL;
	w = word_slot(gpa, 1);
	if (w->val != old)
		return -EAGAIN;
	w->val = new_;
	return 0;
}

void shim_warn(const char *file, int line)
{
	char one[256];
	int n = snprintf(one, sizeof(one), "%s%s:%d", warn_len ? "," : "", file, line);

	if (n > 0 && warn_len + (size_t)n < sizeof(warn_buf)) {
		memcpy(warn_buf + warn_len, one, (size_t)n + 1);
		warn_len += (size_t)n;
	}
}

void shim_bug(const char *file, int line)
{
	snprintf(bug_buf, sizeof(bug_buf), "%s:%d", file, line);
	if (bug_armed)
		longjmp(bug_jmp, 1);
	fprintf(stderr, "kvm-at: BUG at %s outside an op\n", bug_buf);
	exit(3);
}

unsigned long long shim_hw_read(int reg)
{
	return hw[reg];
}

void shim_hw_write(int reg, unsigned long long val)
{
	hw[reg] = val;
}

int shim_hardware_mode(void)
{
	return hardware_mode;
}

unsigned int shim_ipa_limit(void)
{
	return ipa_limit;
}

/*
 * The hardware AT. "fails": the instruction completes and PAR_EL1 reads F=1 with FST=0
 * (not a permission fault), so at.c takes its software path. "hardware": ask stdin.
 */
int shim_hw_at(unsigned int encoding, unsigned long long va)
{
	char line[256];
	u64 par;

	n_hwat++;
	if (!hardware_mode) {
		hw[HWR_PAR_EL1] = 1;
		return 0;
	}
	printf("hwat %s 0x%llx HCR_EL2=0x%llx SCTLR_EL1=0x%llx TCR_EL1=0x%llx TTBR0_EL1=0x%llx "
	       "TTBR1_EL1=0x%llx MAIR_EL1=0x%llx VTTBR_EL2=0x%llx VTCR_EL2=0x%llx PAN=%d\n",
	       kvmat_op_name(encoding), va, hw[HWR_HCR_EL2], hw[HWR_SCTLR_EL1], hw[HWR_TCR_EL1],
	       hw[HWR_TTBR0_EL1], hw[HWR_TTBR1_EL1], hw[HWR_MAIR_EL1], hw[HWR_VTTBR_EL2],
	       hw[HWR_VTCR_EL2], hw[HWR_PSTATE_PAN] ? 1 : 0);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) {
		fprintf(stderr, "kvm-at: %s:%d: no answer on stdin for hwat\n", in_name, in_line);
		exit(2);
	}
	if (!strncmp(line, "fail", 4))
		return 1;
	if (sscanf(line, "par %llx", &par) == 1) {
		hw[HWR_PAR_EL1] = par;
		return 0;
	}
	fprintf(stderr, "kvm-at: %s:%d: bad hwat answer: %s", in_name, in_line, line);
	exit(2);
}

/* ---- parsing ----------------------------------------------------------------------- */
static const char *const hw_names[HWR_COUNT] = {
	[HWR_HCR_EL2] = "HCR_EL2", [HWR_SCTLR_EL1] = "SCTLR_EL1", [HWR_TCR_EL1] = "TCR_EL1",
	[HWR_TTBR0_EL1] = "TTBR0_EL1", [HWR_TTBR1_EL1] = "TTBR1_EL1", [HWR_MAIR_EL1] = "MAIR_EL1",
	[HWR_VTTBR_EL2] = "VTTBR_EL2", [HWR_VTCR_EL2] = "VTCR_EL2", [HWR_PSTATE_PAN] = "PSTATE_PAN",
	[HWR_PAR_EL1] = "PAR_EL1", [HWR_SHADOW_VTTBR_EL2] = "SHADOW_VTTBR_EL2",
	[HWR_TCR2_EL1] = "TCR2_EL1", [HWR_PIR_EL1] = "PIR_EL1", [HWR_PIRE0_EL1] = "PIRE0_EL1",
	[HWR_POR_EL1] = "POR_EL1", [HWR_POR_EL0] = "POR_EL0",
};

static u64 number(const char *tok, const char *what)
{
	char *end;
	u64 v;

	if (!tok)
		input_error("missing %s", what);
	errno = 0;
	if (tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X'))
		v = strtoull(tok + 2, &end, 16);
	else
		v = strtoull(tok, &end, 10);
	if (errno || end == tok || *end || tok[0] == '-' || tok[0] == '+' ||
	    ((tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) && !tok[2]))
		input_error("bad number for %s: %s", what, tok);
	return v;
}

static void no_more(char *tok)
{
	if (tok)
		input_error("unexpected token: %s", tok);
}

static int have_scenario;
static int op_count;
static u64 par_reset;
static char scenario_name[256];

static void start_scenario(const char *name)
{
	kvmat_reset();
	kvmat_ttl_reset();
	nslots = 0;
	ipa_limit = 48;
	gen++;
	if (gen == 0) {		/* wrapped: clear for real */
		memset(words, 0, nwords_cap * sizeof(*words));
		gen = 1;
	}
	nwords_used = 0;
	memset(hw_given, 0, sizeof(hw_given));
	hw_given_shadow = 0;
	kvmat_set_cpsr(0x9);
	kvmat_set_esr(0);
	par_reset = 0;
	op_count = 0;
	have_scenario = 1;
	snprintf(scenario_name, sizeof(scenario_name), "%s", name);
	printf("scenario %s kernel=%s\n", name, KVMAT_KERNEL_VERSION);
}

static void run_op(const char *op, u64 va)
{
	int par_idx = kvmat_par_index();
	int status = KVMAT_OK;
	int bugged = 0;

	kvmat_set_reg(par_idx, par_reset);
	kvmat_clear_written();
	memcpy(hw, hw_given, sizeof(hw));
	if (!hw_given_shadow)
		hw[HWR_SHADOW_VTTBR_EL2] = hw_given[HWR_VTTBR_EL2];
	n_reads = 0;
	n_hwat = 0;
	warn_len = 0;
	warn_buf[0] = '\0';
	bug_buf[0] = '\0';

	bug_armed = 1;
	if (setjmp(bug_jmp) == 0)
		status = kvmat_at(op, va);
	else
		bugged = 1;
	bug_armed = 0;

	if (status == KVMAT_BADOP)
		input_error("unknown AT op: %s", op);

	printf("result %d %s 0x%llx ", op_count++, op, va);
	if (status == KVMAT_UNDEF)
		printf("par=- ");
	else
		printf("par=0x%016llx ", kvmat_get_reg(par_idx));
	printf("written=%d undef=%d reads=%u hwat=%u warn=%s bug=%s\n",
	       status == KVMAT_UNDEF ? 0 : kvmat_par_written(), status == KVMAT_UNDEF,
	       n_reads, n_hwat, warn_len ? warn_buf : "-", bugged ? bug_buf : "-");
}

static void parse_line(char *line)
{
	char *hash = strchr(line, '#');
	char *cmd, *a, *b;

	if (hash)
		*hash = '\0';
	cmd = strtok(line, " \t\r\n");
	if (!cmd)
		return;
	a = strtok(NULL, " \t\r\n");
	b = strtok(NULL, " \t\r\n");

	if (!strcmp(cmd, "scenario")) {
		if (!a)
			input_error("scenario needs a name");
		no_more(b);
		start_scenario(a);
		return;
	}
	if (!strcmp(cmd, "end")) {
		no_more(a);
		have_scenario = 0;
		return;
	}
	if (!have_scenario)
		input_error("'%s' outside a scenario", cmd);

	if (!strcmp(cmd, "id")) {
		u64 v = number(b, "id value");

		no_more(strtok(NULL, " \t\r\n"));
		if (!a || kvmat_id_set(a, v) < 0)
			input_error("unknown ID register: %s", a ? a : "(none)");
	} else if (!strcmp(cmd, "ipa_limit")) {
		u64 v = number(a, "ipa_limit");

		no_more(b);
		if (v < 32 || v > 52)
			input_error("ipa_limit out of range (32..52): %llu", v);
		ipa_limit = (unsigned int)v;
	} else if (!strcmp(cmd, "reg")) {
		u64 v = number(b, "reg value");
		int idx;

		no_more(strtok(NULL, " \t\r\n"));
		idx = a ? kvmat_reg_index(a) : -1;
		if (idx < 0)
			input_error("unknown register: %s", a ? a : "(none)");
		if (idx == kvmat_par_index())
			par_reset = v;
		else
			kvmat_set_reg(idx, v);
	} else if (!strcmp(cmd, "hw")) {
		u64 v = number(b, "hw value");
		int i;

		no_more(strtok(NULL, " \t\r\n"));
		for (i = 0; i < HWR_COUNT; i++)
			if (a && i != HWR_PAR_EL1 && !strcmp(hw_names[i], a))
				break;
		if (i == HWR_COUNT)
			input_error("unknown hardware register: %s", a ? a : "(none)");
		hw_given[i] = v;
		if (i == HWR_SHADOW_VTTBR_EL2)
			hw_given_shadow = 1;
	} else if (!strcmp(cmd, "ram")) {
		u64 base = number(a, "ram base"), size = number(b, "ram size");

		no_more(strtok(NULL, " \t\r\n"));
		if (nslots == MAX_SLOTS)
			input_error("too many ram slots (max %d)", MAX_SLOTS);
		if (!size)
			input_error("empty ram slot");
		slots[nslots].base = base;
		slots[nslots].size = size;
		nslots++;
	} else if (!strcmp(cmd, "mem")) {
		u64 addr = number(a, "mem address"), v = number(b, "mem value");

		no_more(strtok(NULL, " \t\r\n"));
		if (addr & 7)
			input_error("mem address not 8-byte aligned: 0x%llx", addr);
		word_slot(addr, 1)->val = v;
	} else if (!strcmp(cmd, "pstate")) {
		u64 v = number(a, "pstate");

		no_more(b);
		kvmat_set_cpsr(v);
	} else if (!strcmp(cmd, "esr")) {
		u64 v = number(a, "esr");

		no_more(b);
		kvmat_set_esr(v);
	} else if (!strcmp(cmd, "shadow_leaf")) {
		/* a 4KB leaf of the shadow stage 2: its L2 IPA and its PTE (level tag in 56:55) */
		u64 ipa = number(a, "shadow_leaf ipa"), pte = number(b, "shadow_leaf pte");

		no_more(strtok(NULL, " \t\r\n"));
		if (kvmat_shadow_leaf(ipa, pte))
			input_error("too many shadow_leaf lines");
	} else if (!strcmp(cmd, "tlb_inval")) {
		/* nested.c compute_tlb_inval_range(): the size L0 unmaps for TLBI IPAS2E1, Xt = a */
		u64 xt = number(a, "tlb_inval operand");

		no_more(b);
		printf("tlb_inval 0x%llx\n", kvmat_tlb_inval_range(kvmat_get_reg(kvmat_reg_index("VTCR_EL2")), xt));
	} else if (!strcmp(cmd, "compute_hcr")) {
		/* vhe/switch.c __compute_hcr() for the vCPU at vEL2, KVM's own HCR_EL2 = a */
		u64 base = number(a, "compute_hcr base");

		no_more(b);
		printf("compute_hcr 0x%016llx\n", kvmat_compute_hcr(base));
	} else if (!strcmp(cmd, "at")) {
		u64 va = number(b, "at address");

		no_more(strtok(NULL, " \t\r\n"));
		if (!a)
			input_error("at needs an op");
		run_op(a, va);
	} else {
		input_error("unknown command: %s", cmd);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: kvm-at [--mode fails|hardware] SCENARIO_FILE|-\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mode")) {
			if (++i == argc)
				usage();
			if (!strcmp(argv[i], "fails"))
				hardware_mode = 0;
			else if (!strcmp(argv[i], "hardware"))
				hardware_mode = 1;
			else
				usage();
		} else if (!strcmp(argv[i], "--version")) {
			printf("kernel=%s\n", KVMAT_KERNEL_VERSION);
			return 0;
		} else if (!path) {
			path = argv[i];
		} else {
			usage();
		}
	}
	if (!path)
		usage();
	if (!strcmp(path, "-")) {
		if (hardware_mode) {
			fprintf(stderr, "kvm-at: hardware mode answers on stdin: give a file\n");
			return 2;
		}
		f = stdin;
	} else {
		f = fopen(path, "r");
		if (!f) {
			fprintf(stderr, "kvm-at: %s: %s\n", path, strerror(errno));
			return 2;
		}
	}
	in_name = path;
	while (getline(&line, &cap, f) >= 0) {
		in_line++;
		parse_line(line);
	}
	free(line);
	return 0;
}
