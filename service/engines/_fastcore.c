/*
 * The fused CPU kernel of algorithm v1 (service/rng.py): Philox4x32-10 words, the uniform,
 * Wichura's AS241 with the project's own log, truncation, scale and shift, in float64, then one
 * cast to float32 (or float64 kept). Every operation is the reference's, in the reference's
 * order; nothing becomes a fused multiply-add (-ffp-contract=off for gcc, the pragma below for
 * clang), and sqrt is the correctly rounded IEEE one. The tests compare its bytes with the numpy
 * engine's. One shortcut: bfloat16 normals may come from a float32 Φ⁻¹ (FMA and all) where that is
 * proved to give the same bits, the others from the float64 path (`normal_bf16`).
 *
 * generate(out, kind, start, stop, seed, stream, wide, loc, sigma, low, width,
 *          t_lo, t_hi, t_low_cdf, t_mass, t_sign)
 *   out   writable buffer of (stop - start) float32, or float64 when wide
 *   kind  enum kind: 0 normal, 1 truncated normal, 2 uniform (also the module's KIND_* constants)
 * generate_runs(out, kind, starts, lengths, seed, stream, wide, loc, …)
 *   the same values for runs of elements (a slice of a tensor): run r is elements
 *   [starts[r], starts[r] + lengths[r]) (int64 buffers), written one after another in out
 * generate_bf16(out, kind, start, stop, …, t_sign[, exact]), generate_runs_bf16(…[, exact])
 *   the same values as bfloat16 (uint16 bits in out; wide must be 0), the float32 ones narrowed
 *   (round to nearest even). The AVX-512 build makes untruncated normals with loc = 0 from a
 *   float32 Φ⁻¹ where that is proved to give the same bits (`normal_bf16`), the rest in float64;
 *   exact = True makes all in float64. They return how many values took that float64 way back.
 * The GIL is released while they run, so Python threads can run them on disjoint slices.
 *
 * Three builds of the same operations, the best the CPU has chosen at import (`isa`): `run512`
 * and `run256`, written with AVX-512 (F, VL, DQ, BW) and AVX2 intrinsics, and `run`, portable C
 * (target clones for AVX2 and plain x86-64; its loops vectorize; the only build on other CPUs,
 * such as aarch64). WEIGHTGEN_KERNEL=avx2 or =portable chooses a lower one, so the tests can
 * compare them on one machine. Target clones need ifunc; where the platform has none (macOS,
 * musl), setup.py builds again with WEIGHTGEN_NO_CLONES: `run` is then plain C for the baseline
 * ISA, and the SIMD builds, plain `target` attributes chosen by a branch, stay.
 */
#if defined(__clang__)
/* clang contracts a*x+c into an FMA by default and obeys this pragma whatever the flags; gcc
 * ignores it (with a -Wunknown-pragmas warning, an error for the -Werror harness build) and
 * obeys -ffp-contract=off, which setup.py passes */
#pragma STDC FP_CONTRACT OFF
#endif
#ifndef WEIGHTGEN_NO_PYTHON /* tests/unit/test_kernel_arch.py builds the kernel alone */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#define X86 1 /* the SIMD builds; elsewhere (aarch64, …) the portable C build alone */
#include <immintrin.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define M0 0xD2511F53u
#define M1 0xCD9E8D57u
#define W0 0x9E3779B9u
#define W1 0xBB67AE85u
#define TWO_M32 0x1p-32
#define TWO_M52 0x1p-52
#define P_MAX (1.0 - 0x1p-53) /* the largest double below 1 */
#define CHUNK 1024

/* exported as KIND_* module constants: fast.py reads them rather than repeating the numbers */
enum kind { KIND_NORMAL = 0, KIND_TRUNCATED_NORMAL = 1, KIND_UNIFORM = 2 };

static const double A[8] = {3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3, 1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4, 3.3430575583588128105e4, 2.5090809287301226727e3};
static const double B[8] = {1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3, 2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4, 5.2264952788528545610e3};
static const double C[8] = {1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0, 3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1, 2.27238449892691845833e-2, 7.74545014278341407640e-4};
static const double D[8] = {1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1, 1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4, 1.05075007164441684324e-9};
static const double E[8] = {6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0, 2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3, 2.71155556874348757815e-5, 2.01033439929228813265e-7};
static const double F[8] = {1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2, 7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7, 2.04426310338993978564e-15};
static const double LN2_HI = 6.93147180369123816490e-01;
static const double LN2_LO = 1.90821492927058770002e-10;
static const double SQRT_HALF = 0.70710678118654752440;
/* 1/(2k+1): constant-folded with correct rounding, the values Python's 1.0 / (2k+1) gives */
static const double LOG_SERIES[12] = {1.0, 1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0, 1.0 / 11.0,
                                      1.0 / 13.0, 1.0 / 15.0, 1.0 / 17.0, 1.0 / 19.0, 1.0 / 21.0, 1.0 / 23.0};

static inline double horner(const double *c, int n, double x) {
    double acc = c[n - 1];
    for (int i = n - 2; i >= 0; i--) acc = acc * x + c[i];
    return acc;
}

/* frexp for positive normal doubles, by bits: exact, and vectorizable. The exponent field
 * becomes a double through 2^52 + e (exact), so no int64 -> double conversion is needed. */
static inline double mantissa_exponent(double x, double *ef) {
    uint64_t bits, eb;
    memcpy(&bits, &x, 8);
    eb = (bits >> 52) | 0x4330000000000000ull;
    double e52;
    memcpy(&e52, &eb, 8);
    *ef = (e52 - 0x1p52) - 1022.0;
    bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FE0000000000000ull;
    double m;
    memcpy(&m, &bits, 8);
    return m;
}

/* the project's log, for x >= 2^-1022 (normal), branch-free so that it vectorizes */
static inline double own_log(double x) {
    double ef, m = mantissa_exponent(x, &ef);
    int small = m < SQRT_HALF;
    m = small ? m + m : m;
    ef = small ? ef - 1.0 : ef;
    double s = (m - 1.0) / (m + 1.0);
    double logm = (s + s) * horner(LOG_SERIES, 12, s * s);
    return ef * LN2_HI + (ef * LN2_LO + logm);
}

/* the same log for any positive x: subnormals take the library frexp (exact too) */
static double own_log_any(double x) {
    if (x >= 0x1p-1022) return own_log(x);
    int e;
    double m = frexp(x, &e), ef = (double)e;
    if (m < SQRT_HALF) { m = m + m; ef = ef - 1.0; }
    double s = (m - 1.0) / (m + 1.0);
    double logm = (s + s) * horner(LOG_SERIES, 12, s * s);
    return ef * LN2_HI + (ef * LN2_LO + logm);
}

/* the tail branch of one element, both sub-branches, any p (the rare cases) */
static double tail_any(double pt) {
    double r = sqrt(-own_log_any(pt));
    if (r <= 5.0) { double rn = r - 1.6; return horner(C, 8, rn) / horner(D, 8, rn); }
    double rf = r - 5.0;
    return horner(E, 8, rf) / horner(F, 8, rf);
}

/* the tail elements of a chunk (outside |q| <= 0.425): their index and min(p, 1 - p) */
static int gather(const double *p, int n, double *tp, int *at) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        double q = p[i] - 0.5;
        if (!(fabs(q) <= 0.425)) { at[k] = i; tp[k] = q < 0.0 ? p[i] : 1.0 - p[i]; k++; }
    }
    return k;
}

/* Φ⁻¹ over a chunk: the central branch for every element (vectorized), then the tail branch
 * for the ~15% outside |q| <= 0.425, gathered into compact arrays so that it vectorizes too;
 * the r > 5 sub-branch (p < e^-25: only 52-bit or truncated uniforms reach it) and subnormal
 * p are redone one by one. (Computing both branches for every element and selecting was
 * measured slower: 100 vs 157 M/s.) */
static inline __attribute__((always_inline)) void ppf(double *p, double *z, int n) {
    double tp[CHUNK], tr[CHUNK], tx[CHUNK];
    int at[CHUNK];
    for (int i = 0; i < n; i++) {
        double q = p[i] - 0.5;
        double r = 0.180625 - q * q;
        z[i] = q * horner(A, 8, r) / horner(B, 8, r);
    }
    int k = gather(p, n, tp, at);
    for (int i = 0; i < k; i++) tr[i] = sqrt(-own_log(tp[i]));
    for (int i = 0; i < k; i++) {
        double rn = tr[i] - 1.6;
        tx[i] = horner(C, 8, rn) / horner(D, 8, rn);
    }
    for (int i = 0; i < k; i++) {
        if (!(tr[i] <= 5.0) || tp[i] < 0x1p-1022) tx[i] = tail_any(tp[i]);
    }
    for (int i = 0; i < k; i++) z[at[i]] = p[at[i]] - 0.5 < 0.0 ? -tx[i] : tx[i];
}

/* the ten rounds of Philox4x32-10 over nb counters held as structure of arrays (so the rounds
 * vectorize), then the words interleaved into out: counter i gives out[4i + j] = x_j */
static inline __attribute__((always_inline)) void rounds(uint32_t *out, uint32_t *c0, uint32_t *c1, uint32_t *c2,
                                                         uint32_t *c3, int nb, uint64_t seed) {
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t rk0 = k0 + (uint32_t)r * W0, rk1 = k1 + (uint32_t)r * W1;
        for (int i = 0; i < nb; i++) {
            uint64_t p0 = (uint64_t)c0[i] * M0, p1 = (uint64_t)c2[i] * M1;
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[i] ^ rk0, n2 = (uint32_t)(p0 >> 32) ^ c3[i] ^ rk1;
            c1[i] = (uint32_t)p1; c3[i] = (uint32_t)p0; c0[i] = n0; c2[i] = n2;
        }
    }
    for (int i = 0; i < nb; i++) {
        out[4 * i] = c0[i]; out[4 * i + 1] = c1[i]; out[4 * i + 2] = c2[i]; out[4 * i + 3] = c3[i];
    }
}

/* Philox4x32-10 over blocks [b0, b0 + nb): block b gives out[4(b - b0) + j] = x_j */
static inline __attribute__((always_inline)) void blocks(uint32_t *out, uint64_t b0, int nb, uint64_t seed, uint64_t stream) {
    uint32_t c0[CHUNK / 2 + 2], c1[CHUNK / 2 + 2], c2[CHUNK / 2 + 2], c3[CHUNK / 2 + 2];
    for (int i = 0; i < nb; i++) {
        uint64_t b = b0 + (uint64_t)i;
        c0[i] = (uint32_t)b; c1[i] = (uint32_t)(b >> 32);
        c2[i] = (uint32_t)stream; c3[i] = (uint32_t)(stream >> 32);
    }
    rounds(out, c0, c1, c2, c3, nb, seed);
}

/* Philox4x32-10 of blocks b[0], …, b[nb - 1], any numbers (nb <= CHUNK): out[4i + j] = x_j of b[i] */
static inline __attribute__((always_inline)) void blocks_at(uint32_t *out, const uint64_t *b, int nb, uint64_t seed, uint64_t stream) {
    uint32_t c0[CHUNK], c1[CHUNK], c2[CHUNK], c3[CHUNK];
    for (int i = 0; i < nb; i++) {
        c0[i] = (uint32_t)b[i]; c1[i] = (uint32_t)(b[i] >> 32);
        c2[i] = (uint32_t)stream; c3[i] = (uint32_t)(stream >> 32);
    }
    rounds(out, c0, c1, c2, c3, nb, seed);
}

/* words from the block-aligned start: out[w0 % 4 + i] is word w0 + i, for i < n (n <= 2 CHUNK);
 * out must hold 2 CHUNK + 64 words (the SIMD builds make a few more than asked) */
static inline __attribute__((always_inline)) const uint32_t *words(uint32_t *out, uint64_t w0, int n, uint64_t seed, uint64_t stream) {
    uint64_t b0 = w0 / 4, b1 = (w0 + (uint64_t)n + 3) / 4;
    blocks(out, b0, (int)(b1 - b0), seed, stream);
    return out + (w0 - 4 * b0);
}

typedef struct {
    int kind, wide; /* kind an enum kind: int, as PyArg_ParseTuple's "i" and the harness fill it */
    uint64_t seed, stream;
    double loc, sigma, low, width, t_lo, t_hi, t_low_cdf, t_mass, t_sign;
    /* last, so that the harness's initializers leave them 0: bf16, the output is bfloat16 (uint16
     * bits; never wide); exact, no float32 Φ⁻¹ for it (`normal_bf16`); redone, where that path
     * adds the count of values it recomputed in float64 (NULL: not counted) */
    int bf16, exact;
    int64_t *redone;
} Job;

/* float32 -> bfloat16 bits, rounding to nearest even, exactly as ml_dtypes' cast (the numpy
 * reference's): a NaN becomes the quiet NaN 0x7FC0 with its sign, ±inf stays, a finite value
 * past bfloat16's largest rounds to ±inf */
static inline uint16_t bf16_of(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    uint32_t rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
    uint32_t nan = ((b >> 16) & 0x8000u) | 0x7FC0u;
    return (uint16_t)((b & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

/* vectorized by the compiler in each build it is inlined into */
static inline __attribute__((always_inline)) void narrow(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_of(src[i]);
}

/* the uniforms of n values from their words: one word each, or two (52 bits) when wide */
static inline __attribute__((always_inline)) void uniforms(const uint32_t *w, double *u, int n, int wide) {
    if (wide) {
        for (int i = 0; i < n; i++) {
            uint64_t m = ((uint64_t)w[2 * i] << 20) | ((uint64_t)w[2 * i + 1] >> 12);
            u[i] = ((double)m + 0.5) * TWO_M52;
        }
    } else {
        for (int i = 0; i < n; i++) u[i] = ((double)w[i] + 0.5) * TWO_M32;
    }
}

/* truncated normal: u -> p inside [Φ(α), Φ(β)), below 1 */
static inline __attribute__((always_inline)) void truncate_uniforms(const Job *j, double *u, int n) {
    for (int i = 0; i < n; i++) {
        double p = u[i] * j->t_mass + j->t_low_cdf;
        u[i] = p < P_MAX ? p : P_MAX;
    }
}

/* after Φ⁻¹: clamp and sign (truncated), scale and shift, store float32 or float64 */
static inline __attribute__((always_inline)) void finish(const Job *j, double *z, void *out, int n) {
    if (j->kind == KIND_TRUNCATED_NORMAL) {
        for (int i = 0; i < n; i++) {
            double v = z[i] < j->t_lo ? j->t_lo : (z[i] > j->t_hi ? j->t_hi : z[i]);
            z[i] = j->t_sign < 0.0 ? -v : v;
        }
    }
    for (int i = 0; i < n; i++) z[i] = z[i] * j->sigma + j->loc;
    if (j->wide) {
        double *o = (double *)out;
        for (int i = 0; i < n; i++) o[i] = z[i];
    } else {
        float *o = (float *)out;
        for (int i = 0; i < n; i++) o[i] = (float)z[i];
    }
}

static inline __attribute__((always_inline)) void store_uniform(const Job *j, const double *u, void *out, int n) {
    if (j->wide) {
        double *o = (double *)out;
        for (int i = 0; i < n; i++) o[i] = u[i] * j->width + j->low;
    } else {
        float *o = (float *)out;
        for (int i = 0; i < n; i++) o[i] = (float)(u[i] * j->width + j->low);
    }
}

/* one chunk from its words: uniforms, then a uniform law's values or Φ⁻¹ (`inverse`) and the rest */
static inline __attribute__((always_inline)) void from_words(const Job *j, const uint32_t *w, double *u, double *z,
                                                             void *out, int n, void (*inverse)(double *, double *, int)) {
    uniforms(w, u, n, j->wide);
    if (j->kind == KIND_UNIFORM) {
        store_uniform(j, u, out, n);
        return;
    }
    if (j->kind == KIND_TRUNCATED_NORMAL) truncate_uniforms(j, u, n);
    inverse(u, z, n);
    finish(j, z, out, n);
}

typedef const uint32_t *(*Words)(uint32_t *, uint64_t, int, uint64_t, uint64_t);
typedef void (*Inverse)(double *, double *, int);
typedef void (*Normal32)(const Job *, float *, uint64_t, int);
typedef int (*NormalBf16)(const Job *, uint16_t *, uint64_t, int);

static inline size_t value_size(const Job *j) {
    return j->wide ? 8 : (j->bf16 ? 2 : 4);
}

/* whether `normal_bf16` may make a job's values: what docs/decisions.md ("bfloat16 normals from
 * a float32 Φ⁻¹") proves exact, normal from 32-bit words, loc = ±0, (float)σ normal; else the
 * float64 values, narrowed */
static inline int approximable(const Job *j) {
    return j->bf16 && !j->exact && j->kind == KIND_NORMAL && !j->wide && j->loc == 0.0 &&
           j->sigma >= 0x1p-100 && j->sigma <= 0x1p100;
}

/* values [start, stop) chunk by chunk, with one build's functions (constants once inlined);
 * `normal32`, where a build has it, does float32 normal and truncated normal chunks whole, and
 * `normal_bf16` the approximable bfloat16 ones; other bfloat16 chunks are made in float32 and
 * narrowed while in cache */
static inline __attribute__((always_inline)) void drive(const Job *j, void *out, int64_t start, int64_t stop,
                                                        Words make_words, Inverse inverse, Normal32 normal32,
                                                        NormalBf16 normal_bf16) {
    uint32_t wbuf[2 * CHUNK + 64];
    double u[CHUNK + 8], z[CHUNK + 8];
    float f[CHUNK]; /* a bfloat16 chunk's float32 values */
    size_t size = value_size(j);
    int approx = normal_bf16 != NULL && approximable(j);
    for (int64_t lo = start; lo < stop; lo += CHUNK) {
        int n = (int)((stop - lo) < CHUNK ? (stop - lo) : CHUNK);
        char *o = (char *)out + (size_t)(lo - start) * size;
        if (approx) {
            int redone = normal_bf16(j, (uint16_t *)o, (uint64_t)lo, n);
            if (j->redone != NULL) *j->redone += redone;
            continue;
        }
        void *v = j->bf16 ? (void *)f : (void *)o;
        if (normal32 != NULL && !j->wide && j->kind != KIND_UNIFORM) {
            normal32(j, (float *)v, (uint64_t)lo, n);
        } else {
            const uint32_t *w = make_words(wbuf, (uint64_t)lo * (j->wide ? 2 : 1), j->wide ? 2 * n : n, j->seed, j->stream);
            from_words(j, w, u, z, v, n, inverse);
        }
        if (j->bf16) narrow(f, (uint16_t *)o, n);
    }
}

/* target clones dispatch through an ifunc: glibc ELF only. The harness also builds without them
 * to test the plain x86-64 code, which an AVX2 CPU would never pick. */
#if defined(X86) && !defined(WEIGHTGEN_NO_CLONES)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

CLONES static void run(const Job *j, void *out, int64_t start, int64_t stop) {
    drive(j, out, start, stop, words, ppf, NULL, NULL);
}

/* ---- many runs: a slice of a tensor is runs of its elements ---------------------------------
 * Long runs are each a `run` (any build's); the elements of short ones are gathered, CHUNK at a
 * time, and their words made one block per element (word i of block i / 4), so that a column of
 * width 1 costs a block per value rather than a SIMD build's sixteen. The values are the same
 * operations on the same words: the same bytes as the runs made one by one. */
#define SHORT_RUN 32 /* elements: shorter runs are gathered (measured: about where the two cost the same) */

/* the words of n <= CHUNK elements idx[0 .. n): w[i], or w[2i] and w[2i + 1] when wide */
static inline __attribute__((always_inline)) void words_at(uint32_t *w, const int64_t *idx, int n, const Job *j) {
    uint64_t b[CHUNK];
    uint32_t x[4 * CHUNK];
    for (int i = 0; i < n; i++) b[i] = ((uint64_t)idx[i] << j->wide) / 4;
    blocks_at(x, b, n, j->seed, j->stream);
    for (int i = 0; i < n; i++) {
        int lane = (int)(((uint64_t)idx[i] << j->wide) % 4);
        if (j->wide) {
            w[2 * i] = x[4 * i + lane];
            w[2 * i + 1] = x[4 * i + lane + 1];
        } else {
            w[i] = x[4 * i + lane];
        }
    }
}

typedef void (*Run)(const Job *, void *, int64_t, int64_t);
typedef void (*Scattered)(const Job *, void *, const int64_t *, int);

/* the values of n <= CHUNK scattered elements idx[0 .. n), in that order, with one build's Φ⁻¹ */
static inline __attribute__((always_inline)) void gather_with(const Job *j, void *out, const int64_t *idx, int n,
                                                              Inverse inverse) {
    uint32_t w[2 * CHUNK];
    double u[CHUNK + 8], z[CHUNK + 8];
    float f[CHUNK];
    words_at(w, idx, n, j);
    from_words(j, w, u, z, j->bf16 ? (void *)f : out, n, inverse);
    if (j->bf16) narrow(f, (uint16_t *)out, n);
}

CLONES static void scattered(const Job *j, void *out, const int64_t *idx, int n) {
    gather_with(j, out, idx, n, ppf);
}

/* runs r < count, elements [starts[r], starts[r] + lengths[r]) each, one after another in out */
static void many(const Job *j, void *out, const int64_t *starts, const int64_t *lengths, int64_t count,
                 Run one, Scattered some) {
    int64_t idx[CHUNK];
    size_t size = value_size(j);
    char *at = (char *)out, *pending = at; /* pending: where the gathered elements go */
    int n = 0;
    for (int64_t r = 0; r < count; r++) {
        int64_t s = starts[r], len = lengths[r];
        if (len >= SHORT_RUN) {
            if (n > 0) some(j, pending, idx, n);
            n = 0;
            one(j, at, s, s + len);
            at += (size_t)len * size;
            pending = at;
            continue;
        }
        for (int64_t k = 0; k < len; k++) {
            idx[n++] = s + k;
            if (n == CHUNK) {
                some(j, pending, idx, n);
                pending += (size_t)n * size;
                n = 0;
            }
        }
        at += (size_t)len * size;
    }
    if (n > 0) some(j, pending, idx, n);
}

#ifdef X86
/* ---- SIMD builds: the same operations, four or eight lanes at a time ------------------------ */

/* Φ⁻¹ in three passes over a chunk, in both SIMD builds. Pass 1, a vector of values at a time:
 * the central branch for all, and min(p, 1 - p) of the tail elements packed into tp (a register
 * compressed, then one plain store); the vector's tail and sign masks are kept. Pass 2
 * (`tail_pass`): the tail branch over tp, packed. Pass 3: the tail values unpacked back into
 * their lanes, negated where q < 0. */
typedef struct {
    double tp[CHUNK + 8], tr[CHUNK + 8], tx[CHUNK + 8];
    unsigned char tails[CHUNK / 4], lows[CHUNK / 4];
} Tail; /* the count of tp/tx in use stays in a local: the masks are chars, they alias anything */

static inline __attribute__((always_inline)) void tail_pass(Tail *t, int k) {
    int odd = 0;
    for (int i = 0; i < k; i++) t->tr[i] = sqrt(-own_log(t->tp[i]));
    for (int i = 0; i < k; i++) {
        double rn = t->tr[i] - 1.6;
        t->tx[i] = horner(C, 8, rn) / horner(D, 8, rn);
    }
    for (int i = 0; i < k; i++) odd |= !(t->tr[i] <= 5.0) | (t->tp[i] < 0x1p-1022);
    if (odd) { /* r > 5 or a subnormal p: rare, redone one by one */
        for (int i = 0; i < k; i++)
            if (!(t->tr[i] <= 5.0) || t->tp[i] < 0x1p-1022) t->tx[i] = tail_any(t->tp[i]);
    }
}

/* ---- AVX-512 ---- */
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw")))

/* Philox4x32-10 with one block per 128-bit lane, (c0 c1 c2 c3) in order, so that the words come
 * out interleaved as they are stored. A round: vpmuludq multiplies lanes 0 and 2 of each block
 * by M0 and M1, giving (lo0 hi0 lo1 hi1); reversed, (hi1 lo1 hi0 lo0); xor-ing (c1 0 c3 0) and
 * (k0 0 k1 0) gives the next state (hi1^c1^k0, lo1, hi0^c3^k1, lo0). nb is a multiple of 16:
 * four registers, four independent chains. */
AVX512 static void blocks512(uint32_t *out, uint64_t b0, int nb, uint64_t seed, uint64_t stream) {
    const __m512i mul = _mm512_set_epi32(0, (int)M1, 0, (int)M0, 0, (int)M1, 0, (int)M0,
                                         0, (int)M1, 0, (int)M0, 0, (int)M1, 0, (int)M0);
    const __m512i step = _mm512_set_epi64(0, 3, 0, 2, 0, 1, 0, 0);
    const __m512i st = _mm512_set1_epi64((long long)stream);
    __m512i key[10];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        int a = (int)(k0 + (uint32_t)r * W0), b = (int)(k1 + (uint32_t)r * W1);
        key[r] = _mm512_set_epi32(0, b, 0, a, 0, b, 0, a, 0, b, 0, a, 0, b, 0, a);
    }
    for (int i = 0; i < nb; i += 16) {
        __m512i x[4];
        for (int u = 0; u < 4; u++) { /* counters (b, stream) as 64-bit halves */
            __m512i c = _mm512_add_epi64(_mm512_set1_epi64((long long)(b0 + (uint64_t)(i + 4 * u))), step);
            x[u] = _mm512_mask_blend_epi64(0xAA, c, st);
        }
        for (int r = 0; r < 10; r++) {
            for (int u = 0; u < 4; u++) {
                __m512i p = _mm512_shuffle_epi32(_mm512_mul_epu32(x[u], mul), _MM_PERM_ABCD);
                x[u] = _mm512_ternarylogic_epi32(p, _mm512_srli_epi64(x[u], 32), key[r], 0x96);
            }
        }
        for (int u = 0; u < 4; u++) _mm512_storeu_si512(out + 4 * (i + 4 * u), x[u]);
    }
}

/* words from the block-aligned start: out[w0 % 4 + i] is word w0 + i, for i < n (n <= 2 CHUNK);
 * out must hold 2 CHUNK + 64 words */
AVX512 static const uint32_t *words512(uint32_t *out, uint64_t w0, int n, uint64_t seed, uint64_t stream) {
    uint64_t b0 = w0 / 4;
    int off = (int)(w0 - 4 * b0);
    blocks512(out, b0, ((off + n + 3) / 4 + 15) & ~15, seed, stream);
    return out + off;
}

AVX512 static inline __m512d horner512(const double *c, int n, __m512d x) {
    __m512d acc = _mm512_set1_pd(c[n - 1]);
    for (int i = n - 2; i >= 0; i--) acc = _mm512_add_pd(_mm512_mul_pd(acc, x), _mm512_set1_pd(c[i]));
    return acc;
}

AVX512 static inline __attribute__((always_inline)) __m512d central8(__m512d p, Tail *t, int g, int *k) {
    const __m512d half = _mm512_set1_pd(0.5);
    __m512d q = _mm512_sub_pd(p, half);
    __m512d r = _mm512_sub_pd(_mm512_set1_pd(0.180625), _mm512_mul_pd(q, q));
    __m512d z = _mm512_div_pd(_mm512_mul_pd(q, horner512(A, 8, r)), horner512(B, 8, r));
    __mmask8 tail = _mm512_cmp_pd_mask(_mm512_abs_pd(q), _mm512_set1_pd(0.425), _CMP_NLE_UQ);
    __mmask8 low = _mm512_cmp_pd_mask(q, _mm512_setzero_pd(), _CMP_LT_OQ);
    __m512d pt = _mm512_mask_blend_pd(low, _mm512_sub_pd(_mm512_set1_pd(1.0), p), p);
    _mm512_storeu_pd(t->tp + *k, _mm512_maskz_compress_pd(tail, pt));
    t->tails[g] = tail;
    t->lows[g] = low;
    *k += __builtin_popcount((unsigned)tail);
    return z;
}

AVX512 static inline __attribute__((always_inline)) __m512d expand8(__m512d z, const Tail *t, int g, int *k) {
    __mmask8 tail = t->tails[g]; /* no branch on it: about one vector in four has no tail */
    __m512d x = _mm512_maskz_expand_pd(tail, _mm512_loadu_pd(t->tx + *k));
    *k += __builtin_popcount((unsigned)tail);
    x = _mm512_mask_xor_pd(x, (__mmask8)t->lows[g], x, _mm512_set1_pd(-0.0));
    return _mm512_mask_blend_pd(tail, z, x);
}

/* float32 normal or truncated normal, n <= CHUNK values from word w0, fused: words, uniforms
 * and pass 1 in one loop, pass 2, then pass 3 with truncation, scale, shift and the cast */
AVX512 static void normal32(const Job *j, float *out, uint64_t w0, int n) {
    uint32_t wbuf[2 * CHUNK + 64];
    double z[CHUNK];
    Tail t;
    int k = 0;
    const uint32_t *w = words512(wbuf, w0, n, j->seed, j->stream);
    const __m512d half = _mm512_set1_pd(0.5), two_m32 = _mm512_set1_pd(TWO_M32);
    const __m512d mass = _mm512_set1_pd(j->t_mass), low_cdf = _mm512_set1_pd(j->t_low_cdf);
    const int trunc = j->kind == KIND_TRUNCATED_NORMAL;
    for (int i = 0; i < n; i += 8) {
        __mmask8 live = (__mmask8)(n - i >= 8 ? 0xFF : (1u << (n - i)) - 1);
        __m512d u = _mm512_cvtepu32_pd(_mm256_maskz_loadu_epi32(live, w + i));
        __m512d p = _mm512_mul_pd(_mm512_add_pd(u, half), two_m32);
        if (trunc) p = _mm512_min_pd(_mm512_add_pd(_mm512_mul_pd(p, mass), low_cdf), _mm512_set1_pd(P_MAX));
        p = _mm512_mask_blend_pd(live, half, p); /* past n: a central value, never stored */
        _mm512_storeu_pd(z + i, central8(p, &t, i / 8, &k));
    }
    tail_pass(&t, k);
    k = 0;
    const __m512d sigma = _mm512_set1_pd(j->sigma), loc = _mm512_set1_pd(j->loc);
    const __m512d t_lo = _mm512_set1_pd(j->t_lo), t_hi = _mm512_set1_pd(j->t_hi);
    const int flip = j->t_sign < 0.0;
    for (int i = 0; i < n; i += 8) {
        __m512d v = expand8(_mm512_loadu_pd(z + i), &t, i / 8, &k);
        if (trunc) { /* z < lo ? lo : (z > hi ? hi : z), signed zeros included */
            v = _mm512_max_pd(t_lo, _mm512_min_pd(t_hi, v));
            if (flip) v = _mm512_xor_pd(v, _mm512_set1_pd(-0.0));
        }
        __m256 f = _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(v, sigma), loc));
        __mmask8 live = (__mmask8)(n - i >= 8 ? 0xFF : (1u << (n - i)) - 1);
        _mm256_mask_storeu_ps(out + i, live, f);
    }
}

/* Φ⁻¹ of n uniforms (any n <= CHUNK; the last group padded with central values) */
AVX512 static void ppf512(double *p, double *z, int n) {
    Tail t;
    int k = 0;
    for (int i = n; i < ((n + 7) & ~7); i++) p[i] = 0.5;
    for (int i = 0; i < n; i += 8) _mm512_storeu_pd(z + i, central8(_mm512_loadu_pd(p + i), &t, i / 8, &k));
    tail_pass(&t, k);
    k = 0;
    for (int i = 0; i < n; i += 8) _mm512_storeu_pd(z + i, expand8(_mm512_loadu_pd(z + i), &t, i / 8, &k));
}

/* ---- bfloat16 normals from a float32 Φ⁻¹ (docs/decisions.md) --------------------------------
 * The bfloat16 of (float)(z·σ) is a non-decreasing step function of the float64 z, with 8
 * significant bits, so most of z's float64 precision is lost in it. Here Φ⁻¹ runs in float32
 * (16 lanes, FMA, AS241's PPND7 polynomials, the project's log series): z', whose relative error
 * against the float64 z is at most BF16_RHO for every one of the 2^32 words (measured for all of
 * them by bench/bf16_bound.c, with a margin). Then f' = (float)z'·(float)σ is within BF16_GUARD
 * float32 steps of the exact f = (float)(z·σ), and where f' is further than that from every
 * bfloat16 rounding midpoint (the patterns whose low 16 bits are 0x8000) both round to the same
 * bfloat16. The other lanes (about 0.2%: near a midpoint, or f' not a normal float) are made
 * again by the float64 path. Only correctly rounded IEEE operations (FMA included, no approximate
 * reciprocal), so z' is the same on every AVX-512 CPU, and the exhaustive bound holds there. */
#define CENTRAL_LO 322122547u  /* the words of the central branch, |(w + 0.5)·2^-32 - 0.5| <= the */
#define CENTRAL_HI 3972844748u /* double 0.425: LO <= w <= HI (bench/bf16_bound.c checks all 2^32) */
#define BF16_RHO 0x1p-19       /* proved bound on |z'/z - 1|; docs/decisions.md has the margin */
#define BF16_GUARD 72          /* >= (BF16_RHO + 3·2^-24)·2^25 (+ rounding): float32 steps of f' - f */

/* AS241's PPND7 (Wichura 1988, the same paper: "accurate to about 1 part in 10^7"), the same
 * branches as PPND16 (A … D above) with shorter polynomials, lowest degree first */
static const double A7[4] = {3.3871327179e0, 5.0434271938e1, 1.5929113202e2, 5.9109374720e1};
static const double B7[4] = {1.0, 1.7895169469e1, 7.8757757664e1, 6.7187563600e1};
static const double C7[4] = {1.4234372777e0, 2.7568153900e0, 1.3067284816e0, 1.7023821103e-1};
static const double D7[3] = {1.0, 7.3700164250e-1, 1.2021132975e-1};

AVX512 static inline __m512 horner16(const double *c, int n, __m512 x) {
    __m512 acc = _mm512_set1_ps((float)c[n - 1]);
    for (int i = n - 2; i >= 0; i--) acc = _mm512_fmadd_ps(acc, x, _mm512_set1_ps((float)c[i]));
    return acc;
}

/* the central branch q·A(r)/B(r), r = 0.180625 - q², from the word: q = (w - 2^31)·2^-32 + 2^-33 */
AVX512 static inline __m512 central16(__m512i w) {
    __m512 d = _mm512_cvtepi32_ps(_mm512_xor_si512(w, _mm512_set1_epi32(INT32_MIN)));
    __m512 q = _mm512_fmadd_ps(d, _mm512_set1_ps(0x1p-32f), _mm512_set1_ps(0x1p-33f));
    __m512 r = _mm512_fnmadd_ps(q, q, _mm512_set1_ps(0.180625f));
    return _mm512_div_ps(_mm512_mul_ps(q, horner16(A7, 4, r)), horner16(B7, 4, r));
}

/* the tail branch C(r - 1.6)/D(r - 1.6), r = √(−log pt), for m = min(w, ~w) < 2^31, so
 * pt = min(p, 1 - p) = (m + 0.5)·2^-32 >= 2^-33 and r <= 4.78 (never the E/F sub-branch). The log
 * as the project's, frexp by bits, with 5 terms of the series (the sixth is below 2^-28 of it) */
AVX512 static inline __m512 tail16(__m512i m) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 pt = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_set1_ps(0x1p-32f), _mm512_set1_ps(0x1p-33f));
    __m512i bits = _mm512_castps_si512(pt);
    __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126)));
    __m512 x = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)),
                                                   _mm512_set1_epi32(0x3F000000))); /* pt = x·2^e, x in [½, 1) */
    __mmask16 small = _mm512_cmp_ps_mask(x, _mm512_set1_ps((float)SQRT_HALF), _CMP_LT_OQ);
    x = _mm512_mask_add_ps(x, small, x, x);
    e = _mm512_mask_sub_ps(e, small, e, one);
    __m512 s = _mm512_div_ps(_mm512_sub_ps(x, one), _mm512_add_ps(x, one));
    __m512 logx = _mm512_mul_ps(_mm512_add_ps(s, s), horner16(LOG_SERIES, 5, _mm512_mul_ps(s, s)));
    __m512 r = _mm512_sqrt_ps(_mm512_fnmsub_ps(e, _mm512_set1_ps((float)(LN2_HI + LN2_LO)), logx));
    __m512 rn = _mm512_sub_ps(r, _mm512_set1_ps(1.6f));
    return _mm512_div_ps(horner16(C7, 4, rn), horner16(D7, 3, rn));
}

typedef struct {
    int32_t m[CHUNK + 16];
    float x[CHUNK + 16];
    uint16_t tails[CHUNK / 16];
} Tail16;

/* z' of n <= CHUNK words into z, in whole vectors (z holds n rounded up to 16), in ppf512's three
 * passes: the central branch for all and min(w, ~w) of the tail lanes packed; the tail branch
 * over those; the tail values back in their lanes, negative where w < 2^31 (p < 0.5) */
AVX512 static void approx512(const uint32_t *w, float *z, int n) {
    Tail16 t;
    int k = 0;
    const __m512i lo = _mm512_set1_epi32((int)CENTRAL_LO), span = _mm512_set1_epi32((int)(CENTRAL_HI - CENTRAL_LO));
    for (int i = 0; i < n; i += 16) {
        __mmask16 live = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        __m512i wv = _mm512_maskz_loadu_epi32(live, w + i);
        __mmask16 tail = live & _mm512_cmpgt_epu32_mask(_mm512_sub_epi32(wv, lo), span);
        _mm512_storeu_ps(z + i, central16(wv));
        __m512i m = _mm512_xor_si512(wv, _mm512_srai_epi32(wv, 31));
        _mm512_storeu_si512(t.m + k, _mm512_maskz_compress_epi32(tail, m));
        t.tails[i / 16] = tail;
        k += __builtin_popcount(tail);
    }
    for (int i = 0; i < k; i += 16) {
        __mmask16 live = (__mmask16)(k - i >= 16 ? 0xFFFF : (1u << (k - i)) - 1);
        _mm512_storeu_ps(t.x + i, tail16(_mm512_maskz_loadu_epi32(live, t.m + i)));
    }
    k = 0;
    for (int i = 0; i < n; i += 16) {
        __mmask16 tail = t.tails[i / 16];
        __m512 x = _mm512_maskz_expand_ps(tail, _mm512_loadu_ps(t.x + k));
        k += __builtin_popcount(tail);
        __mmask16 low = (__mmask16)~_mm512_movepi32_mask(_mm512_maskz_loadu_epi32(tail, w + i));
        x = _mm512_mask_xor_ps(x, tail & low, x, _mm512_set1_ps(-0.0f));
        _mm512_storeu_ps(z + i, _mm512_mask_blend_ps(tail, _mm512_loadu_ps(z + i), x));
    }
}

/* the values at redo[0 .. k) of a chunk by the float64 path: from_words' and finish's operations */
AVX512 static void exact_bf16(const Job *j, const uint32_t *w, uint16_t *out, const int32_t *redo, int k) {
    double p[CHUNK + 8], z[CHUNK + 8];
    for (int i = 0; i < k; i++) p[i] = ((double)w[redo[i]] + 0.5) * TWO_M32;
    ppf512(p, z, k);
    for (int i = 0; i < k; i++) out[redo[i]] = bf16_of((float)(z[i] * j->sigma + j->loc));
}

/* bfloat16 normal, n <= CHUNK values from word w0, for an `approximable` job: f' = z'·(float)σ in
 * float32; a lane whose f' is a normal float (exponent field 2 … 253) more than BF16_GUARD steps
 * from a rounding midpoint is stored rounded, the others are made by exact_bf16. Returns how many
 * those were. */
AVX512 static int normal_bf16(const Job *j, uint16_t *out, uint64_t w0, int n) {
    uint32_t wbuf[2 * CHUNK + 64];
    float z[CHUNK];
    int32_t redo[CHUNK + 16];
    int k = 0;
    const uint32_t *w = words512(wbuf, w0, n, j->seed, j->stream);
    approx512(w, z, n);
    const __m512 sigma = _mm512_set1_ps((float)j->sigma);
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF), low16 = _mm512_set1_epi32(0xFFFF);
    const __m512i near = _mm512_set1_epi32(0x8000 - BF16_GUARD), guard = _mm512_set1_epi32(2 * BF16_GUARD);
    for (int i = 0; i < n; i += 16) {
        __mmask16 live = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        __m512i b = _mm512_castps_si512(_mm512_mul_ps(_mm512_loadu_ps(z + i), sigma));
        __m512i mag = _mm512_and_si512(b, magnitude);
        __m512i exponent = _mm512_sub_epi32(_mm512_srli_epi32(mag, 23), _mm512_set1_epi32(2));
        __mmask16 normal = _mm512_cmple_epu32_mask(exponent, _mm512_set1_epi32(251));
        __mmask16 far = _mm512_cmpgt_epu32_mask(_mm512_sub_epi32(_mm512_and_si512(mag, low16), near), guard);
        __mmask16 ok = live & normal & far, bad = live & (__mmask16)~ok;
        __m512i even = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
        __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(even, _mm512_set1_epi32(0x7FFF))), 16);
        _mm256_mask_storeu_epi16(out + i, ok, _mm512_cvtepi32_epi16(rounded));
        for (unsigned m = bad; m != 0; m &= m - 1) redo[k++] = i + __builtin_ctz(m); /* rare: no vector */
    }
    if (k > 0) exact_bf16(j, w, out, redo, k);
    return k;
}

AVX512 static void run512(const Job *j, void *out, int64_t start, int64_t stop) {
    drive(j, out, start, stop, words512, ppf512, normal32, normal_bf16);
}

AVX512 static void scattered512(const Job *j, void *out, const int64_t *idx, int n) {
    gather_with(j, out, idx, n, ppf512);
}

/* ---- AVX2 ---- */
#define AVX2 __attribute__((target("avx2")))

/* Philox as blocks512, two blocks per register (AVX2 has no three-way xor: two xors) */
AVX2 static void blocks256(uint32_t *out, uint64_t b0, int nb, uint64_t seed, uint64_t stream) {
    const __m256i mul = _mm256_set_epi32(0, (int)M1, 0, (int)M0, 0, (int)M1, 0, (int)M0);
    __m256i key[10];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        int a = (int)(k0 + (uint32_t)r * W0), b = (int)(k1 + (uint32_t)r * W1);
        key[r] = _mm256_set_epi32(0, b, 0, a, 0, b, 0, a);
    }
    for (int i = 0; i < nb; i += 16) {
        __m256i x[8];
        for (int u = 0; u < 8; u++) {
            uint64_t b = b0 + (uint64_t)(i + 2 * u);
            x[u] = _mm256_set_epi64x((long long)stream, (long long)(b + 1), (long long)stream, (long long)b);
        }
        for (int r = 0; r < 10; r++) {
            for (int u = 0; u < 8; u++) {
                __m256i p = _mm256_shuffle_epi32(_mm256_mul_epu32(x[u], mul), 0x1B);
                x[u] = _mm256_xor_si256(_mm256_xor_si256(p, _mm256_srli_epi64(x[u], 32)), key[r]);
            }
        }
        for (int u = 0; u < 8; u++) _mm256_storeu_si256((__m256i *)(out + 4 * (i + 2 * u)), x[u]);
    }
}

/* as words512; 8 words more than asked are made, so that whole vectors can be read */
AVX2 static const uint32_t *words256(uint32_t *out, uint64_t w0, int n, uint64_t seed, uint64_t stream) {
    uint64_t b0 = w0 / 4;
    int off = (int)(w0 - 4 * b0);
    blocks256(out, b0, ((off + n + 8 + 3) / 4 + 15) & ~15, seed, stream);
    return out + off;
}

AVX2 static inline __m256d horner256(const double *c, int n, __m256d x) {
    __m256d acc = _mm256_set1_pd(c[n - 1]);
    for (int i = n - 2; i >= 0; i--) acc = _mm256_add_pd(_mm256_mul_pd(acc, x), _mm256_set1_pd(c[i]));
    return acc;
}

/* AVX2 has no compress or expand: permutations of 32-bit halves from tables, by 4-bit mask.
 * PACK[m] moves the doubles of the set lanes to the front, in order; UNPACK[m] puts the i-th
 * packed double back into the i-th set lane; LANES[m] is m as a blend mask. */
static int32_t PACK[16][8], UNPACK[16][8];
static int64_t LANES[16][4];

static void make_tables(void) {
    for (int m = 0; m < 16; m++) {
        int k = 0;
        for (int j = 0; j < 4; j++) {
            PACK[m][2 * j] = PACK[m][2 * j + 1] = 0;
            UNPACK[m][2 * j] = UNPACK[m][2 * j + 1] = 0;
            LANES[m][j] = (m >> j) & 1 ? -1 : 0;
        }
        for (int j = 0; j < 4; j++) {
            if (!((m >> j) & 1)) continue;
            PACK[m][2 * k] = 2 * j;
            PACK[m][2 * k + 1] = 2 * j + 1;
            UNPACK[m][2 * j] = 2 * k;
            UNPACK[m][2 * j + 1] = 2 * k + 1;
            k++;
        }
    }
}

AVX2 static inline __attribute__((always_inline)) __m256d central4(__m256d p, Tail *t, int g, int *k) {
    const __m256d half = _mm256_set1_pd(0.5);
    __m256d q = _mm256_sub_pd(p, half);
    __m256d r = _mm256_sub_pd(_mm256_set1_pd(0.180625), _mm256_mul_pd(q, q));
    __m256d z = _mm256_div_pd(_mm256_mul_pd(q, horner256(A, 8, r)), horner256(B, 8, r));
    __m256d aq = _mm256_andnot_pd(_mm256_set1_pd(-0.0), q);
    int tail = _mm256_movemask_pd(_mm256_cmp_pd(aq, _mm256_set1_pd(0.425), _CMP_NLE_UQ));
    __m256d low = _mm256_cmp_pd(q, _mm256_setzero_pd(), _CMP_LT_OQ);
    __m256d pt = _mm256_blendv_pd(_mm256_sub_pd(_mm256_set1_pd(1.0), p), p, low);
    __m256i packed = _mm256_permutevar8x32_epi32(_mm256_castpd_si256(pt), _mm256_loadu_si256((const __m256i *)PACK[tail]));
    _mm256_storeu_si256((__m256i *)(t->tp + *k), packed);
    t->tails[g] = (unsigned char)tail;
    t->lows[g] = (unsigned char)_mm256_movemask_pd(low);
    *k += __builtin_popcount((unsigned)tail);
    return z;
}

AVX2 static inline __attribute__((always_inline)) __m256d unpack4(__m256d z, const Tail *t, int g, int *k) {
    int tail = t->tails[g]; /* no branch on it: about one vector in two has no tail */
    __m256i x = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(t->tx + *k)),
                                            _mm256_loadu_si256((const __m256i *)UNPACK[tail]));
    *k += __builtin_popcount((unsigned)tail);
    __m256d low = _mm256_castsi256_pd(_mm256_loadu_si256((const __m256i *)LANES[t->lows[g]]));
    __m256d v = _mm256_xor_pd(_mm256_castsi256_pd(x), _mm256_and_pd(low, _mm256_set1_pd(-0.0)));
    return _mm256_blendv_pd(z, v, _mm256_castsi256_pd(_mm256_loadu_si256((const __m256i *)LANES[tail])));
}

/* as normal32: float32 normal or truncated normal, n <= CHUNK values from word w0 */
AVX2 static void normal32_avx2(const Job *j, float *out, uint64_t w0, int n) {
    uint32_t wbuf[2 * CHUNK + 64];
    double z[CHUNK + 4];
    Tail t;
    int k = 0;
    const uint32_t *w = words256(wbuf, w0, n, j->seed, j->stream);
    const __m256d half = _mm256_set1_pd(0.5), two_m32 = _mm256_set1_pd(TWO_M32), two_31 = _mm256_set1_pd(0x1p31);
    const __m256d mass = _mm256_set1_pd(j->t_mass), low_cdf = _mm256_set1_pd(j->t_low_cdf);
    const __m128i flip_sign = _mm_set1_epi32((int)0x80000000u);
    const int trunc = j->kind == KIND_TRUNCATED_NORMAL;
    for (int i = 0; i < n; i += 4) {
        /* (double)w exactly: w - 2^31 as a signed int, then + 2^31 */
        __m128i wv = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(w + i)), flip_sign);
        __m256d u = _mm256_add_pd(_mm256_cvtepi32_pd(wv), two_31);
        __m256d p = _mm256_mul_pd(_mm256_add_pd(u, half), two_m32);
        if (trunc) p = _mm256_min_pd(_mm256_add_pd(_mm256_mul_pd(p, mass), low_cdf), _mm256_set1_pd(P_MAX));
        if (n - i < 4) /* past n: a central value, never stored */
            p = _mm256_blendv_pd(half, p, _mm256_castsi256_pd(_mm256_loadu_si256((const __m256i *)LANES[(1 << (n - i)) - 1])));
        _mm256_storeu_pd(z + i, central4(p, &t, i / 4, &k));
    }
    tail_pass(&t, k);
    k = 0;
    const __m256d sigma = _mm256_set1_pd(j->sigma), loc = _mm256_set1_pd(j->loc);
    const __m256d t_lo = _mm256_set1_pd(j->t_lo), t_hi = _mm256_set1_pd(j->t_hi);
    const int flip = j->t_sign < 0.0;
    for (int i = 0; i < n; i += 4) {
        __m256d v = unpack4(_mm256_loadu_pd(z + i), &t, i / 4, &k);
        if (trunc) { /* z < lo ? lo : (z > hi ? hi : z), signed zeros included */
            v = _mm256_max_pd(t_lo, _mm256_min_pd(t_hi, v));
            if (flip) v = _mm256_xor_pd(v, _mm256_set1_pd(-0.0));
        }
        __m128 f = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(v, sigma), loc));
        if (n - i >= 4) {
            _mm_storeu_ps(out + i, f);
        } else {
            float rest[4];
            _mm_storeu_ps(rest, f);
            memcpy(out + i, rest, (size_t)(n - i) * sizeof(float));
        }
    }
}

/* Φ⁻¹ of n uniforms (any n <= CHUNK; the last vector padded with central values) */
AVX2 static void ppf256(double *p, double *z, int n) {
    Tail t;
    int k = 0;
    for (int i = n; i < ((n + 3) & ~3); i++) p[i] = 0.5;
    for (int i = 0; i < n; i += 4) _mm256_storeu_pd(z + i, central4(_mm256_loadu_pd(p + i), &t, i / 4, &k));
    tail_pass(&t, k);
    k = 0;
    for (int i = 0; i < n; i += 4) _mm256_storeu_pd(z + i, unpack4(_mm256_loadu_pd(z + i), &t, i / 4, &k));
}

AVX2 static void run256(const Job *j, void *out, int64_t start, int64_t stop) {
    drive(j, out, start, stop, words256, ppf256, normal32_avx2, NULL);
}

AVX2 static void scattered256(const Job *j, void *out, const int64_t *idx, int n) {
    gather_with(j, out, idx, n, ppf256);
}

#endif /* X86 */

#ifndef WEIGHTGEN_NO_PYTHON
CLONES static void bfloat16_from(const float *src, uint16_t *dst, int64_t n) {
    narrow(src, dst, n);
}

/* the build that runs: 2 AVX-512 (F, VL, DQ, BW), 1 AVX2, 0 portable C; set at import to the
 * best the CPU has, or lower with WEIGHTGEN_KERNEL=portable|avx2 (the tests compare them) */
static int isa = 0;
static const char *ISA_NAMES[3] = {"portable", "avx2", "avx512"};

/* the value a generate* call returns: the count of values normal_bf16 made in float64 for
 * bfloat16 output, None for the others */
static PyObject *done(const Job *j, int64_t redone) {
    if (j->bf16) return PyLong_FromLongLong((long long)redone);
    Py_RETURN_NONE;
}

/* generate (bf16 = 0) and generate_bf16 (bf16 = 1: out takes bfloat16 bits as uint16, never
 * wide; an optional last argument `exact` turns the float32 Φ⁻¹ off) */
static PyObject *generate_as(PyObject *args, int bf16) {
    Py_buffer buf;
    Job j = {0};
    long long start, stop;
    unsigned long long seed, stream;
    int64_t redone = 0;
    if (!PyArg_ParseTuple(args, bf16 ? "w*iLLKKiddddddddd|p" : "w*iLLKKiddddddddd", &buf, &j.kind, &start, &stop,
                          &seed, &stream, &j.wide, &j.loc, &j.sigma, &j.low, &j.width, &j.t_lo, &j.t_hi,
                          &j.t_low_cdf, &j.t_mass, &j.t_sign, &j.exact))
        return NULL;
    j.seed = seed;
    j.stream = stream;
    j.bf16 = bf16;
    j.redone = &redone;
    if (stop < start || stop - start > buf.len / (Py_ssize_t)value_size(&j) || j.kind < KIND_NORMAL ||
        j.kind > KIND_UNIFORM || (bf16 && j.wide)) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "bad range, kind or buffer size (or bfloat16 asked wide)");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
#ifdef X86
    if (isa == 2) run512(&j, buf.buf, start, stop);
    else if (isa == 1) run256(&j, buf.buf, start, stop);
    else
#endif
        run(&j, buf.buf, start, stop);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return done(&j, redone);
}

static PyObject *generate(PyObject *self, PyObject *args) {
    (void)self;
    return generate_as(args, 0);
}

static PyObject *generate_bf16(PyObject *self, PyObject *args) {
    (void)self;
    return generate_as(args, 1);
}

/* generate_runs(out, kind, starts, lengths, seed, stream, wide, loc, …): as generate, for the runs
 * of elements [starts[r], starts[r] + lengths[r]) (int64 buffers), one after another in out */
static int runs_fit(const Py_buffer *s, const Py_buffer *l, Py_ssize_t room) {
    if (s->len != l->len || s->len % 8 != 0 || ((uintptr_t)s->buf | (uintptr_t)l->buf) % 8 != 0) return 0;
    const int64_t *starts = (const int64_t *)s->buf, *lengths = (const int64_t *)l->buf;
    int64_t total = 0;
    for (Py_ssize_t r = 0; r < s->len / 8; r++) {
        if (starts[r] < 0 || lengths[r] < 0 || starts[r] > INT64_MAX - lengths[r] || lengths[r] > room - total) return 0;
        total += lengths[r];
    }
    return 1;
}

/* generate_runs and generate_runs_bf16, as generate_as */
static PyObject *generate_runs_as(PyObject *args, int bf16) {
    Py_buffer buf, sb, lb;
    Job j = {0};
    unsigned long long seed, stream;
    int64_t redone = 0;
    if (!PyArg_ParseTuple(args, bf16 ? "w*iy*y*KKiddddddddd|p" : "w*iy*y*KKiddddddddd", &buf, &j.kind, &sb, &lb,
                          &seed, &stream, &j.wide, &j.loc, &j.sigma, &j.low, &j.width, &j.t_lo, &j.t_hi,
                          &j.t_low_cdf, &j.t_mass, &j.t_sign, &j.exact))
        return NULL;
    j.seed = seed;
    j.stream = stream;
    j.bf16 = bf16;
    j.redone = &redone;
    if (!runs_fit(&sb, &lb, buf.len / (Py_ssize_t)value_size(&j)) || j.kind < KIND_NORMAL || j.kind > KIND_UNIFORM ||
        (bf16 && j.wide)) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&sb);
        PyBuffer_Release(&lb);
        PyErr_SetString(PyExc_ValueError,
                        "bad runs (int64 starts and lengths, within the buffer) or kind (or bfloat16 asked wide)");
        return NULL;
    }
    const int64_t *starts = (const int64_t *)sb.buf, *lengths = (const int64_t *)lb.buf;
    int64_t count = (int64_t)(sb.len / 8);
    Py_BEGIN_ALLOW_THREADS
#ifdef X86
    if (isa == 2) many(&j, buf.buf, starts, lengths, count, run512, scattered512);
    else if (isa == 1) many(&j, buf.buf, starts, lengths, count, run256, scattered256);
    else
#endif
        many(&j, buf.buf, starts, lengths, count, run, scattered);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&lb);
    return done(&j, redone);
}

static PyObject *generate_runs(PyObject *self, PyObject *args) {
    (void)self;
    return generate_runs_as(args, 0);
}

static PyObject *generate_runs_bf16(PyObject *self, PyObject *args) {
    (void)self;
    return generate_runs_as(args, 1);
}

/* to_bfloat16(src, dst): the float32 values of src as bfloat16 (uint16 bits) into dst, of the same
 * length; without the GIL (a block's narrowing runs beside the event loop, not in its way) */
static PyObject *to_bfloat16(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*", &src, &dst)) return NULL;
    if (src.len % 4 != 0 || dst.len * 2 != src.len || ((uintptr_t)src.buf % 4) != 0 || ((uintptr_t)dst.buf % 2) != 0) {
        PyBuffer_Release(&src);
        PyBuffer_Release(&dst);
        PyErr_SetString(PyExc_ValueError, "to_bfloat16 needs aligned float32 values and room for as many bfloat16");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    bfloat16_from((const float *)src.buf, (uint16_t *)dst.buf, (int64_t)(src.len / 4));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"generate", generate, METH_VARARGS, "fill a buffer with values [start, stop) of algorithm v1"},
    {"generate_runs", generate_runs, METH_VARARGS, "fill a buffer with the values of runs of elements"},
    {"generate_bf16", generate_bf16, METH_VARARGS, "generate, as bfloat16 bits; returns the values redone in float64"},
    {"generate_runs_bf16", generate_runs_bf16, METH_VARARGS, "generate_runs, as bfloat16 bits; as generate_bf16"},
    {"to_bfloat16", to_bfloat16, METH_VARARGS, "float32 values as bfloat16 (round to nearest even)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcore", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastcore(void) {
    /* the kernel stores native-order floats into the little-endian arrays fast.py hands it: on a
     * big-endian host every value would be byte-swapped. ImportError is fast.py's "not built",
     * so the reference path runs. Tested at run time: not every compiler has __BYTE_ORDER__. */
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    if (first != 1) {
        PyErr_SetString(PyExc_ImportError, "_fastcore: big-endian host, the kernel writes little-endian "
                                           "arrays in native order; the reference path is used");
        return NULL;
    }
#ifdef X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) isa = 1;
    if (isa == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        isa = 2;
#endif
    const char *cap = getenv("WEIGHTGEN_KERNEL"); /* one it cannot take: fast.py says so */
    for (int i = 0; cap != NULL && i < isa; i++)
        if (strcmp(cap, ISA_NAMES[i]) == 0) isa = i;
#ifdef X86
    make_tables();
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddStringConstant(m, "isa", ISA_NAMES[isa]) < 0 ||
        PyModule_AddIntConstant(m, "KIND_NORMAL", KIND_NORMAL) < 0 ||
        PyModule_AddIntConstant(m, "KIND_TRUNCATED_NORMAL", KIND_TRUNCATED_NORMAL) < 0 ||
        PyModule_AddIntConstant(m, "KIND_UNIFORM", KIND_UNIFORM) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
#endif /* WEIGHTGEN_NO_PYTHON */
