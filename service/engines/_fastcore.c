/*
 * The fused CPU kernel of algorithm v1 (service/rng.py): Philox4x32-10 words, the uniform,
 * Wichura's AS241 with the project's own log, truncation, scale and shift, in float64, then one
 * cast to float32 (or float64 kept). Every operation is the reference's, in the reference's
 * order; the build passes -ffp-contract=off so nothing becomes a fused multiply-add, and sqrt
 * is the correctly rounded IEEE one. The tests compare its bytes with the numpy engine's.
 *
 * generate(out, kind, start, stop, seed, stream, wide, loc, sigma, low, width,
 *          t_lo, t_hi, t_low_cdf, t_mass, t_sign)
 *   out   writable buffer of (stop - start) float32, or float64 when wide
 *   kind  0 normal, 1 truncated normal, 2 uniform
 * The GIL is released while it runs, so Python threads can run it on disjoint slices.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
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

/* Φ⁻¹ over a chunk: the central branch for every element (vectorized), then the tail branch
 * for the ~15% outside |q| <= 0.425, gathered into compact arrays so that it vectorizes too;
 * the r > 5 sub-branch (p < e^-25: only 52-bit or truncated uniforms reach it) and subnormal
 * p are redone one by one. (Computing both branches for every element and selecting was
 * measured slower: 100 vs 157 M/s.) */
/* the tail elements of a chunk (outside |q| <= 0.425): their index and min(p, 1 - p) */
static int gather_scalar(const double *p, int n, double *tp, int *at) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        double q = p[i] - 0.5;
        if (!(fabs(q) <= 0.425)) { at[k] = i; tp[k] = q < 0.0 ? p[i] : 1.0 - p[i]; k++; }
    }
    return k;
}

/* the same with AVX-512 compress-stores: no branch per element (the scalar loop mispredicts on
 * the random 15%); the same values, since 1 - p and the compare are exact */
__attribute__((target("avx512f,avx512vl")))
static int gather_avx512(const double *p, int n, double *tp, int *at) {
    const __m512d half = _mm512_set1_pd(0.5), edge = _mm512_set1_pd(0.425), one = _mm512_set1_pd(1.0);
    __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i eight = _mm256_set1_epi32(8);
    int k = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d pv = _mm512_loadu_pd(p + i);
        __m512d q = _mm512_sub_pd(pv, half);
        __mmask8 tail = _mm512_cmp_pd_mask(_mm512_abs_pd(q), edge, _CMP_NLE_UQ);
        __mmask8 low = _mm512_cmp_pd_mask(q, _mm512_setzero_pd(), _CMP_LT_OQ);
        __m512d pt = _mm512_mask_blend_pd(low, _mm512_sub_pd(one, pv), pv);
        _mm512_mask_compressstoreu_pd(tp + k, tail, pt);
        _mm256_mask_compressstoreu_epi32(at + k, tail, index);
        k += __builtin_popcount((unsigned)tail);
        index = _mm256_add_epi32(index, eight);
    }
    int rest = gather_scalar(p + i, n - i, tp + k, at + k);
    for (int j = 0; j < rest; j++) at[k + j] += i;
    return k + rest;
}

static int use_avx512 = 0; /* set at import: the CPU has AVX-512 F and VL */

static inline __attribute__((always_inline)) void ppf(const double *p, double *z, int n) {
    double tp[CHUNK], tr[CHUNK], tx[CHUNK];
    int at[CHUNK];
    for (int i = 0; i < n; i++) {
        double q = p[i] - 0.5;
        double r = 0.180625 - q * q;
        z[i] = q * horner(A, 8, r) / horner(B, 8, r);
    }
    int k = use_avx512 ? gather_avx512(p, n, tp, at) : gather_scalar(p, n, tp, at);
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

/* Philox4x32-10 over blocks [b0, b0 + nb), structure of arrays so the rounds vectorize;
 * words interleaved into out: block b gives out[4(b - b0) + j] = x_j */
static inline __attribute__((always_inline)) void blocks(uint32_t *out, uint64_t b0, int nb, uint64_t seed, uint64_t stream) {
    uint32_t c0[CHUNK / 2 + 2], c1[CHUNK / 2 + 2], c2[CHUNK / 2 + 2], c3[CHUNK / 2 + 2];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int i = 0; i < nb; i++) {
        uint64_t b = b0 + (uint64_t)i;
        c0[i] = (uint32_t)b; c1[i] = (uint32_t)(b >> 32);
        c2[i] = (uint32_t)stream; c3[i] = (uint32_t)(stream >> 32);
    }
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

/* words [w0, w0 + n) of the stream into out (n <= 2 * CHUNK) */
static inline __attribute__((always_inline)) void words(uint32_t *out, uint64_t w0, int n, uint64_t seed, uint64_t stream) {
    uint32_t tmp[2 * CHUNK + 8];
    uint64_t b0 = w0 / 4, b1 = (w0 + (uint64_t)n + 3) / 4;
    blocks(tmp, b0, (int)(b1 - b0), seed, stream);
    memcpy(out, tmp + (w0 - 4 * b0), (size_t)n * 4);
}

typedef struct {
    int kind, wide;
    uint64_t seed, stream;
    double loc, sigma, low, width, t_lo, t_hi, t_low_cdf, t_mass, t_sign;
} Job;

__attribute__((target_clones("avx512f", "avx2", "default")))
static void run(const Job *j, void *out, int64_t start, int64_t stop) {
    uint32_t w[2 * CHUNK];
    double u[CHUNK], z[CHUNK];
    for (int64_t lo = start; lo < stop; lo += CHUNK) {
        int n = (int)((stop - lo) < CHUNK ? (stop - lo) : CHUNK);
        if (j->wide) {
            words(w, 2 * (uint64_t)lo, 2 * n, j->seed, j->stream);
            for (int i = 0; i < n; i++) {
                uint64_t m = ((uint64_t)w[2 * i] << 20) | ((uint64_t)w[2 * i + 1] >> 12);
                u[i] = ((double)m + 0.5) * TWO_M52;
            }
        } else {
            words(w, (uint64_t)lo, n, j->seed, j->stream);
            for (int i = 0; i < n; i++) u[i] = ((double)w[i] + 0.5) * TWO_M32;
        }
        if (j->kind == 2) {
            for (int i = 0; i < n; i++) z[i] = u[i] * j->width + j->low;
        } else {
            if (j->kind == 1) {
                for (int i = 0; i < n; i++) {
                    double p = u[i] * j->t_mass + j->t_low_cdf;
                    u[i] = p < P_MAX ? p : P_MAX;
                }
            }
            ppf(u, z, n);
            if (j->kind == 1) {
                for (int i = 0; i < n; i++) {
                    double v = z[i] < j->t_lo ? j->t_lo : (z[i] > j->t_hi ? j->t_hi : z[i]);
                    z[i] = j->t_sign < 0.0 ? -v : v;
                }
            }
            for (int i = 0; i < n; i++) z[i] = z[i] * j->sigma + j->loc;
        }
        if (j->wide) {
            double *o = (double *)out + (lo - start);
            for (int i = 0; i < n; i++) o[i] = z[i];
        } else {
            float *o = (float *)out + (lo - start);
            for (int i = 0; i < n; i++) o[i] = (float)z[i];
        }
    }
}

static PyObject *generate(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Job j;
    long long start, stop;
    unsigned long long seed, stream;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*iLLKKiddddddddd", &buf, &j.kind, &start, &stop, &seed, &stream,
                          &j.wide, &j.loc, &j.sigma, &j.low, &j.width, &j.t_lo, &j.t_hi,
                          &j.t_low_cdf, &j.t_mass, &j.t_sign))
        return NULL;
    j.seed = seed;
    j.stream = stream;
    Py_ssize_t need = (Py_ssize_t)(stop - start) * (j.wide ? 8 : 4);
    if (stop < start || buf.len < need || j.kind < 0 || j.kind > 2) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "bad range, kind or buffer size");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    run(&j, buf.buf, start, stop);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"generate", generate, METH_VARARGS, "fill a buffer with values [start, stop) of algorithm v1"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcore", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastcore(void) {
    __builtin_cpu_init();
    use_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    if (getenv("WEIGHTGEN_KERNEL_PORTABLE") != NULL) use_avx512 = 0; /* tests check both paths */
    return PyModule_Create(&module);
}
