/* The fused kernel without Python, for tests/unit/test_kernel_arch.py: one line per case and
 * range, a 64-bit FNV-1a hash of the portable C build's output bytes. Built for the host and
 * for another architecture, the lines must be the same. On x86 the SIMD builds the CPU has are
 * run too, and any byte they differ in is an exit status of 1; so is a run of many runs (a slice's)
 * that differs from its runs made one by one. */
#define WEIGHTGEN_NO_PYTHON
#include <stdio.h>

#include "_fastcore.c"

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int main(void) {
    static double buf[300000];
    int failed = 0;
#ifdef X86
    static double other[300000];
    make_tables();
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
#endif
    /* kind, wide, seed, stream, loc, sigma, low, width, t_lo, t_hi, t_low_cdf, t_mass, t_sign */
    const Job cases[] = {
        {0, 0, 0x9E3779B97F4A7C15ull, 77, 0.0, 0.03, 0, 0, 0, 0, 0, 0, 1.0},
        {0, 1, 12345, 0, 0.5, 2.0, 0, 0, 0, 0, 0, 0, 1.0},
        {1, 0, 99, 5, 0.0, 0.1, 0, 0, -2.0, 2.0, 0.02275013194817921, 0.9544997361036416, 1.0},
        {1, 1, 99, 5, 0.0, 0.1, 0, 0, -2.0, 2.0, 0.02275013194817921, 0.9544997361036416, -1.0},
        {1, 0, 7, 3, 0.0, 1.0, 0, 0, 37.5, 40.0, 1e-300, 1e-306, -1.0}, /* r > 5, subnormal p */
        {2, 0, 1, 2, 0, 0, -0.1, 0.2, 0, 0, 0, 0, 1.0},
        {2, 1, 1, 2, 0, 0, -3.0, 8.0, 0, 0, 0, 0, 1.0},
    };
    const int64_t ranges[][2] = {{3, 250000}, {((int64_t)1 << 40) + 3, ((int64_t)1 << 40) + 3000}};
    for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int r = 0; r < 2; r++) {
            int64_t a = ranges[r][0], b = ranges[r][1];
            run(&cases[c], buf, a, b);
            size_t n = (size_t)(b - a) * (cases[c].wide ? 8 : 4);
            printf("case %u range %d: %016llx\n", c, r, (unsigned long long)fnv((unsigned char *)buf, n));
#ifdef X86
            if (avx2) {
                run256(&cases[c], other, a, b);
                if (memcmp(buf, other, n) != 0) {
                    fprintf(stderr, "avx2 differs: case %u range %d\n", c, r);
                    failed = 1;
                }
            }
            if (avx512) {
                run512(&cases[c], other, a, b);
                if (memcmp(buf, other, n) != 0) {
                    fprintf(stderr, "avx512 differs: case %u range %d\n", c, r);
                    failed = 1;
                }
            }
#endif
        }
    }
    /* runs, short (gathered) and long, at offsets past 2^40 too: the same bytes as each run made
     * alone by the portable build; one more line per case */
    const int64_t starts[] = {5, 9, 4096, 70000, 70001, 100003, ((int64_t)1 << 40) + 1, 7};
    const int64_t lengths[] = {3, 1, 1500, 1, 31, 32, 2500, 0};
    const int64_t count = (int64_t)(sizeof starts / sizeof starts[0]);
    static double one[300000];
    for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t size = cases[c].wide ? 8 : 4, n = 0;
        for (int64_t r = 0; r < count; r++) {
            run(&cases[c], (char *)one + n, starts[r], starts[r] + lengths[r]);
            n += (size_t)lengths[r] * size;
        }
        many(&cases[c], buf, starts, lengths, count, run, scattered);
        printf("case %u runs: %016llx\n", c, (unsigned long long)fnv((unsigned char *)buf, n));
        if (memcmp(buf, one, n) != 0) {
            fprintf(stderr, "runs differ from ranges: case %u\n", c);
            failed = 1;
        }
#ifdef X86
        if (avx2) {
            many(&cases[c], other, starts, lengths, count, run256, scattered256);
            if (memcmp(buf, other, n) != 0) {
                fprintf(stderr, "avx2 runs differ: case %u\n", c);
                failed = 1;
            }
        }
        if (avx512) {
            many(&cases[c], other, starts, lengths, count, run512, scattered512);
            if (memcmp(buf, other, n) != 0) {
                fprintf(stderr, "avx512 runs differ: case %u\n", c);
                failed = 1;
            }
        }
#endif
    }
    return failed ? 1 : 0;
}
