// The residual coder's loops over a run of targets that share one prediction formula (residual.cpp's each_run
// hands them out through the Kernels table): the encoder's codes (residual_codes) and the values decoded from
// codes (residual_run, which the encoder runs too). Part of the kernels: included only by kernels.cpp, which is
// compiled once per instruction set; hence everything here sits in an anonymous namespace.
//
// Every operation is inr/residual.py's, in the same order, in double (no FP contraction), so every build codes and
// decodes bit for bit as the numpy reference does. What the builds differ in is only how many targets one
// instruction handles: the loops below are written so that the compiler vectorises them (a constant stride, no
// branch but the one on the exact-value mask, hoisted out of the loop).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels.h"

namespace inr {
namespace {

// The prediction of the target at t from its line (l, r: the decoded samples at -+off, ll, rr at -+3 off), by
// kind: 0 zero, 1 the left value (no right one), 2 linear, 3 cubic (inr/residual.py _interp: the same float64
// operations in the same order).
template <int KIND>
inline double predict_kind(const float* t, int64_t off) {
    if constexpr (KIND == 0) return 0.0;
    const double l = t[-off];
    if constexpr (KIND == 1) return l;
    const double r = t[off];
    if constexpr (KIND == 2) return 0.5 * (l + r);
    const double ll = t[-3 * off], rr = t[3 * off];
    return (9.0 * (l + r) - (ll + rr)) / 16.0;
}

template <int KIND, class K>
inline float reconstruct(const float* at, int64_t off, K k, double step) {
    return static_cast<float>(predict_kind<KIND>(at, off) + static_cast<double>(k) * step);
}

// count targets at t, t + S, ... with codes k[0, count) (int32 or int64); S a compile-time stride (1, 2) or 0 for
// the runtime s.
template <int KIND, int S, class K>
void run_plain(float* t, int64_t s, int64_t count, int64_t off, const K* k, double step) {
    if constexpr (S == 2) {
        // Written as pairs (target, the sample after it, unchanged) so that the store covers every float of the
        // stretch: a store with gaps does not vectorise. The sample after a target is never a target of this
        // pass, nor read by it as written here: it keeps its value. The last target has no pair past the run.
        int64_t x = 0;
        for (; x + 1 < count; ++x) {
            float* at = t + 2 * x;
            const float rec = reconstruct<KIND>(at, off, k[x], step);
            const float keep = at[1];
            at[0] = rec;
            at[1] = keep;
        }
        for (; x < count; ++x) t[2 * x] = reconstruct<KIND>(t + 2 * x, off, k[x], step);
    } else {
        const int64_t stride = S ? S : s;
        for (int64_t x = 0; x < count; ++x) t[x * stride] = reconstruct<KIND>(t + x * stride, off, k[x], step);
    }
}

// As run_plain, where em[x * s] marks a target whose value is ev[x * s] instead (stored exactly).
template <int KIND, class K>
void run_exact(float* t, int64_t s, int64_t count, int64_t off, const K* k, double step, const uint8_t* em,
               const float* ev) {
    for (int64_t x = 0; x < count; ++x) {
        float* at = t + x * s;
        const float rec = reconstruct<KIND>(at, off, k[x], step);
        at[0] = em[x * s] ? ev[x * s] : rec;
    }
}

template <int KIND, class K>
void run_kind(float* t, int64_t s, int64_t count, int64_t off, const K* k, double step, const uint8_t* em,
              const float* ev) {
    if (em) return run_exact<KIND>(t, s, count, off, k, step, em, ev);
    if (s == 1) return run_plain<KIND, 1>(t, s, count, off, k, step);
    if (s == 2) return run_plain<KIND, 2>(t, s, count, off, k, step);
    run_plain<KIND, 0>(t, s, count, off, k, step);
}

template <class K>
void residual_run(int kind, float* t, int64_t s, int64_t count, int64_t off, const K* k, double step,
                  const uint8_t* em, const float* ev) {
    switch (kind) {
        case 0: return run_kind<0>(t, s, count, off, k, step, em, ev);
        case 1: return run_kind<1>(t, s, count, off, k, step, em, ev);
        case 2: return run_kind<2>(t, s, count, off, k, step, em, ev);
        default: return run_kind<3>(t, s, count, off, k, step, em, ev);
    }
}

// std::nearbyint(x), numpy's rint (halves to even): an instruction from SSE4.1 on; in the baseline build, adding
// and removing 2^52 rounds |x| < 2^52 to an integer in the default rounding mode (from 2^52 on a double is one
// already): the same value, without libm's call, which saves and restores the FP environment for each value.
inline double round_half_even(double x) {
#if defined(__SSE4_1__) || defined(__AVX2__)
    return std::nearbyint(x);
#else
    constexpr double kBig = 4503599627370496.0;  // 2^52
    const double a = std::fabs(x);
    return a < kBig ? std::copysign((a + kBig) - kBig, x) : x;
#endif
}

// The encoder's codes of count targets at t, t + s, ... that share one prediction formula: k[x] = rint((d[x * s] -
// prediction) / step), the numpy reference's operations (the mode trials; d: the data, at the targets' offsets).
// A code past int64 (or NaN, from a NaN target) is 0: the encoder's bound check then stores that value exactly.
template <int KIND>
void codes_kind(const float* t, int64_t s, int64_t count, int64_t off, const double* d, double step, int64_t* k) {
    constexpr double kLimit = 9223372036854775807.0;  // 2^63
    for (int64_t x = 0; x < count; ++x) {
        const double q = round_half_even((d[x * s] - predict_kind<KIND>(t + x * s, off)) / step);
        k[x] = q > -kLimit && q < kLimit ? static_cast<int64_t>(q) : 0;
    }
}

void residual_codes(int kind, const float* t, int64_t s, int64_t count, int64_t off, const double* d, double step,
                    int64_t* k) {
    switch (kind) {
        case 0: return codes_kind<0>(t, s, count, off, d, step, k);
        case 1: return codes_kind<1>(t, s, count, off, d, step, k);
        case 2: return codes_kind<2>(t, s, count, off, d, step, k);
        default: return codes_kind<3>(t, s, count, off, d, step, k);
    }
}

}  // namespace
}  // namespace inr
