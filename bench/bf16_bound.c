/* The exhaustive bound behind the kernel's bfloat16 fast path (docs/decisions.md, "bfloat16
 * normals from a float32 Φ⁻¹"): for every 32-bit word w in [first, last), the float32 z' of
 * `approx512` against the float64 z of `ppf512` (the exact path: the same bytes as the numpy
 * reference, by the tests), both the kernel's own functions, compiled from its source with
 * setup.py's flags by bench/bf16_bound.py. It prints, per branch, the largest |z'/z - 1| and its
 * word, checks that the kernel's integer branch test (CENTRAL_LO <= w <= CENTRAL_HI) is the float64
 * one (|p - 0.5| <= 0.425) for every word, and that every tail word has r <= 5 (the C/D
 * sub-branch, the only one approx512 has), and derives what the kernel's BF16_GUARD covers.
 *
 *     bf16_bound [first last [threads]]      (default: all 2^32 words, 2 threads)
 *
 * Exit status 1 when a check fails or the margin under BF16_RHO is below MARGIN. */
#define WEIGHTGEN_NO_PYTHON
#include <pthread.h>
#include <stdio.h>

#include "_fastcore.c"

#define MARGIN 4.0 /* BF16_RHO over the measured maximum, at least */
#define U24 0x1p-24
#define U53 0x1p-53

typedef struct {
    uint64_t first, last;
    double worst[2];     /* max |z'/z - 1|: central, tail */
    uint32_t at[2];      /* its word */
    uint64_t words[2];   /* words of each branch */
    uint64_t mismatched; /* integer and float64 branch tests disagree */
    uint64_t bad;        /* z' not finite, or z zero */
    double r_max;        /* the largest r = √(−log min(p, 1 − p)) of the tail words */
} Scan;

AVX512 static void scan_chunk(Scan *s, uint64_t w0, int n) {
    uint32_t w[CHUNK];
    double p[CHUNK + 8], z[CHUNK + 8];
    float approx[CHUNK];
    for (int i = 0; i < n; i++) {
        w[i] = (uint32_t)(w0 + (uint64_t)i);
        p[i] = ((double)w[i] + 0.5) * TWO_M32;
    }
    approx512(w, approx, n);
    ppf512(p, z, n);
    for (int i = 0; i < n; i++) {
        double q = ((double)w[i] + 0.5) * TWO_M32 - 0.5;
        int tail = !(fabs(q) <= 0.425);
        int central = w[i] - CENTRAL_LO <= CENTRAL_HI - CENTRAL_LO;
        s->mismatched += (uint64_t)(central == tail);
        s->words[tail]++;
        if (!isfinite(approx[i]) || z[i] == 0.0) {
            s->bad++;
            continue;
        }
        double err = fabs(((double)approx[i] - z[i]) / z[i]);
        if (err > s->worst[tail]) {
            s->worst[tail] = err;
            s->at[tail] = w[i];
        }
        if (tail) {
            double r = sqrt(-own_log(q < 0.0 ? p[i] : 1.0 - p[i]));
            if (r > s->r_max) s->r_max = r;
        }
    }
}

static void *scan(void *arg) {
    Scan *s = arg;
    for (uint64_t w0 = s->first; w0 < s->last; w0 += CHUNK) {
        uint64_t left = s->last - w0;
        scan_chunk(s, w0, left < CHUNK ? (int)left : CHUNK);
    }
    return NULL;
}

/* the float32 steps between f' and f that a relative error rho of z' allows, rounded up: f'/f
 * is (z'/z)(1 + e3)(1 + e4) / ((1 + e1)(1 + e2)) with |e1| <= 2^-53 (z·σ in float64), |e2|, |e3|,
 * |e4| <= 2^-24 (to float32, (float)σ, z'·σ in float32), so |f'/f - 1| <= d; and
 * |f - f'| <= d/(1 - d)·|f'| < d/(1 - d)·2^25 steps of f''s binade's half ulp */
static double steps(double rho) {
    double d = (1.0 + rho) * (1.0 + U24) * (1.0 + U24) / ((1.0 - U53) * (1.0 - U24)) - 1.0;
    return d / (1.0 - d) * 0x1p25 * (1.0 + 0x1p-40); /* the last factor: this double arithmetic */
}

int main(int argc, char **argv) {
    uint64_t first = argc > 2 ? strtoull(argv[1], NULL, 0) : 0, last = argc > 2 ? strtoull(argv[2], NULL, 0) : 1ull << 32;
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    if (threads < 1 || threads > 64 || last > (1ull << 32) || first >= last) {
        fprintf(stderr, "usage: bf16_bound [first last [threads]] (words, last <= 2^32)\n");
        return 2;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512bw")) {
        fprintf(stderr, "this CPU has no AVX-512 (F, VL, DQ, BW): the fast path never runs here\n");
        return 2;
    }
    Scan parts[64] = {{0}};
    pthread_t ids[64];
    uint64_t share = ((last - first) / (uint64_t)threads + CHUNK - 1) / CHUNK * CHUNK;
    for (int t = 0; t < threads; t++) {
        parts[t].first = first + share * (uint64_t)t < last ? first + share * (uint64_t)t : last;
        parts[t].last = parts[t].first + share < last ? parts[t].first + share : last;
        pthread_create(&ids[t], NULL, scan, &parts[t]);
    }
    Scan all = {0};
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        for (int b = 0; b < 2; b++) {
            all.words[b] += parts[t].words[b];
            if (parts[t].worst[b] > all.worst[b]) {
                all.worst[b] = parts[t].worst[b];
                all.at[b] = parts[t].at[b];
            }
        }
        all.mismatched += parts[t].mismatched;
        all.bad += parts[t].bad;
        if (parts[t].r_max > all.r_max) all.r_max = parts[t].r_max;
    }
    const char *names[2] = {"central", "tail"};
    printf("words [%#llx, %#llx), %d threads\n", (unsigned long long)first, (unsigned long long)last, threads);
    for (int b = 0; b < 2; b++)
        printf("%-7s %10llu words, max |z'/z - 1| = %.4e = %.2f * 2^-24 (word 0x%08x)\n", names[b],
               (unsigned long long)all.words[b], all.worst[b], all.worst[b] / U24, all.at[b]);
    double rho = all.worst[0] > all.worst[1] ? all.worst[0] : all.worst[1];
    printf("branch test mismatches: %llu; z' not finite: %llu; largest tail r: %.6f (<= 5: %s)\n",
           (unsigned long long)all.mismatched, (unsigned long long)all.bad, all.r_max, all.r_max <= 5.0 ? "yes" : "NO");
    printf("BF16_RHO = %.4e: margin %.2f over the measured max (at least %.0f asked)\n", BF16_RHO, BF16_RHO / rho, MARGIN);
    printf("steps of f' - f: %.2f at the measured max, %.2f at BF16_RHO; BF16_GUARD = %d\n", steps(rho),
           steps(BF16_RHO), BF16_GUARD);
    int ok = all.mismatched == 0 && all.bad == 0 && all.r_max <= 5.0 && BF16_RHO >= MARGIN * rho &&
             steps(BF16_RHO) <= BF16_GUARD;
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
