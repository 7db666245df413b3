/* C helpers of the Cython CPU kernels that Cython cannot write as well: whether OpenMP is on,
 * and a branch-free float32 exp that the compiler vectorises. Declared in fastnn_cpu.pxd. */
#ifndef FASTNN_MATH_H
#define FASTNN_MATH_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
static int fastnn_have_openmp(void) { return 1; }
#else
static int fastnn_have_openmp(void) { return 0; }
#endif

/* exp(x) for float32 x <= 0 (or NaN), without branches so that a loop over it vectorises
   (libm's expf is a call per element). Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a
   degree-6 polynomial for exp(r) (about 1 ulp), and 2^n put in the exponent bits of the
   float that rounded x / ln2. The selects are bit masks, as the vectoriser needs: x < -87,
   where exp(x) < 2e-38 is below what a softmax sum of at least 1 can tell from 0, gives 0,
   and a NaN comes back as it went in. */
static inline float fastnn_expf_nonpos(float x) {
#if FLT_EVAL_METHOD == 0
    const float magic = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer */
    uint32_t ux, ax, big, nan, uxc, ut, us, up;
    float xc, t, n, r, p, scale;
    memcpy(&ux, &x, 4);
    ax = ux & 0x7FFFFFFFu;
    big = -(uint32_t)(ax > 0x42AE0000u);   /* |x| > 87, inf or NaN */
    nan = -(uint32_t)(ax > 0x7F800000u);
    uxc = (big & 0xC2AE0000u) | (~big & ux);  /* x, or -87 */
    memcpy(&xc, &uxc, 4);
    t = xc * 1.44269504088896341f + magic;
    n = t - magic;
    r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
          + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    memcpy(&ut, &t, 4);
    us = (ut - 0x4B400000u + 127u) << 23;  /* 2^n */
    memcpy(&scale, &us, 4);
    p = p * scale;
    memcpy(&up, &p, 4);
    up = (~big & up) | (nan & ux);
    memcpy(&p, &up, 4);
    return p;
#else  /* excess precision would break the rounding trick */
    return expf(x);
#endif
}

/* a[i] = exp(a[i]) for a[i] <= 0, in place: one long loop that the compiler vectorises */
static void fastnn_expf_nonpos_inplace(float *a, Py_ssize_t size) {
    Py_ssize_t i;
    for (i = 0; i < size; i++)
        a[i] = fastnn_expf_nonpos(a[i]);
}

#endif
