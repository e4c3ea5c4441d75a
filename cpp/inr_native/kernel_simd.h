// Vector types of the kernel build: kLanes floats per register, gathers.
// Part of the kernels: included only by kernels.cpp, which is compiled once per
// instruction set; hence everything here sits in an anonymous namespace.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace inr {
namespace {

constexpr int T = kTile;
// Floats per vector register of this build: loops run over points in steps of
// kLanes; wider generic vectors than the ISA has make GCC spill to the stack.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX2__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif

// Weight gradients are summed in kSumLanes partial sums (point i into sum i mod
// kSumLanes), the same in every build: a build with narrower vectors keeps
// kSumLanes / kLanes accumulators. Every other sum runs over points in order,
// so builds for different instruction sets train to bit-identical results.
constexpr int kSumLanes = 16;
static_assert(kSumLanes % kLanes == 0, "kSumLanes must be a multiple of the vector width");

inline size_t round16(size_t n) { return (n + 15) & ~size_t(15); }

// Points of a tile that the vector loops cover: n rounded up to whole vectors.
inline int lanes(int n) { return (n + kLanes - 1) / kLanes * kLanes; }

// kLanes floats (or indices) as one value, one register (GCC/Clang vector extensions).
typedef float vf __attribute__((vector_size(kLanes * sizeof(float))));
inline vf load(const float* p) {
    vf v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof(v)); }
typedef uint32_t vu __attribute__((vector_size(kLanes * sizeof(uint32_t))));
inline vu loadu(const uint32_t* p) {
    vu v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
inline void storeu(uint32_t* p, vu v) { std::memcpy(p, &v, sizeof(v)); }

// base[idx[k]] for the kLanes lanes (idx < 2^31, see make_levels). Hardware
// gathers where the ISA has them: measured faster than scalar loads here.
inline vf gather(const float* base, vu idx) {
    vf out;
#if defined(__AVX512F__)
    __m512i i;
    std::memcpy(&i, &idx, sizeof(i));
    const __m512 r = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, i, base, 4);
    std::memcpy(&out, &r, sizeof(out));
#elif defined(__AVX2__)
    __m256i i;
    std::memcpy(&i, &idx, sizeof(i));
    const __m256 r = _mm256_i32gather_ps(base, i, 4);
    std::memcpy(&out, &r, sizeof(out));
#else
    for (int k = 0; k < kLanes; ++k) out[k] = base[idx[k]];
#endif
    return out;
}

}  // namespace
}  // namespace inr
