// The residual coder's prediction of one target from its line (inr/residual.py's _interp, the same float64
// operations in the same order). Shared by the encoder (residual.cpp) and the per-instruction-set decoding loop
// (kernel_residual.h); in an anonymous namespace, so each translation unit, built for whichever instruction set,
// keeps its own copy.
#pragma once

#include <cstdint>

namespace inr {
namespace {

// The prediction of the target at t from its line (l, r: the decoded samples at -+off, ll, rr at -+3 off), by
// kind: 0 zero, 1 the left value (no right one), 2 linear, 3 cubic.
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

}  // namespace
}  // namespace inr
