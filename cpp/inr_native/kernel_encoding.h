// Hash-grid encoding of a tile, forward and backward (gradient scatter into the tables).
// Part of the kernels: included only by kernels.cpp, which is compiled once per
// instruction set; hence everything here sits in an anonymous namespace.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernel_simd.h"
#include "kernel_tile.h"

namespace inr {
namespace {

// tiny-cuda-nn's hash primes for y and z (x's is 1), as in hashgrid.h.
constexpr uint32_t kPrime1 = 2654435761u;
constexpr uint32_t kPrime2 = 805459861u;

// Cell and fraction of coordinates at one level: a separate multiply and add
// (the build disables FP contraction), exactly as torch computes x*scale + 0.5.
// Coordinates are in [0, 1] (checked at the boundary), so pos > 0 and
// truncation is floor.
typedef int32_t vi __attribute__((vector_size(kLanes * sizeof(int32_t))));
inline void cells(const float* x, float scale, uint32_t* c, float* f) {
    for (int i0 = 0; i0 < T; i0 += kLanes) {
        const vf pos = load(x + i0) * scale + 0.5f;
        const vi cell = __builtin_convertvector(pos, vi);
        storeu(c + i0, __builtin_convertvector(cell, vu));
        store(f + i0, pos - __builtin_convertvector(cell, vf));
    }
}

// Table entry (within the level) and weight of the 8 corners of each point.
void level_corners(const LevelsView& lv, int l, const float* x, const float* y, const float* z, uint32_t* idx,
                   float* w) {
    alignas(64) uint32_t cx[T], cy[T], cz[T];
    alignas(64) float fx[T], fy[T], fz[T];
    cells(x, lv.scale[l], cx, fx);
    cells(y, lv.scale[l], cy, fy);
    cells(z, lv.scale[l], cz, fz);
    const uint32_t size = lv.size[l], r = lv.resolution[l];
    for (int c = 0; c < 8; ++c) {
        const uint32_t bx = c & 1, by = (c >> 1) & 1, bz = (c >> 2) & 1;
        float* wc = w + c * T;
        uint32_t* ic = idx + c * T;
        for (int i = 0; i < T; ++i) {
            const float wx = bx ? fx[i] : 1.f - fx[i];
            const float wy = by ? fy[i] : 1.f - fy[i];
            const float wz = bz ? fz[i] : 1.f - fz[i];
            wc[i] = wx * wy * wz;  // (wx*wy)*wz, torch's prod order
        }
        if (lv.dense[l]) {
            // Corner coordinates are <= r, so the index is < 2*size: one subtraction is the modulo.
            for (int i = 0; i < T; ++i) {
                const uint32_t v = (cx[i] + bx) + (cy[i] + by) * r + (cz[i] + bz) * (r * r);
                ic[i] = v >= size ? v - size : v;
            }
        } else {
            const uint32_t mask = size - 1;  // hashed levels have power-of-two tables
            for (int i = 0; i < T; ++i)
                ic[i] = ((cx[i] + bx) ^ ((cy[i] + by) * kPrime1) ^ ((cz[i] + bz) * kPrime2)) & mask;
        }
    }
}

template <int F>
void encode_tile(const NetView& net, const float* x, const float* y, const float* z, const Scratch& s) {
    const LevelsView& lv = net.lv;
    for (int l = 0; l < lv.n_levels; ++l) {
        uint32_t* idx = s.idx + size_t(l) * 8 * T;
        float* w = s.wts + size_t(l) * 8 * T;
        level_corners(lv, l, x, y, z, idx, w);
        const float* tab = net.table + size_t(lv.offset[l]) * F;
        for (int i0 = 0; i0 < T; i0 += kLanes) {
            vf acc[F];
            for (int f = 0; f < F; ++f) acc[f] = vf{};
            for (int c = 0; c < 8; ++c) {
                const vu e = loadu(idx + c * T + i0) * uint32_t(F);
                const vf wc = load(w + c * T + i0);
                for (int f = 0; f < F; ++f) acc[f] += wc * gather(tab + f, e);
            }
            for (int f = 0; f < F; ++f) store(s.enc + size_t(l * F + f) * T + i0, acc[f]);
        }
    }
}

// Scatter dLoss/dencoding into the table gradient (points i < n only). The F
// features of an entry are read, updated and written as one small vector.
template <int F>
void encode_backward(const NetView& net, const Scratch& s, int n, float* grad_table) {
    typedef float fv __attribute__((vector_size(F * sizeof(float))));
    const LevelsView& lv = net.lv;
    for (int l = 0; l < lv.n_levels; ++l) {
        const uint32_t* idx = s.idx + size_t(l) * 8 * T;
        const float* w = s.wts + size_t(l) * 8 * T;
        float* g = grad_table + size_t(lv.offset[l]) * F;
        const float* ge = s.genc + size_t(l) * F * T;
        for (int i = 0; i < n; ++i) {
            float gf[F];
            for (int f = 0; f < F; ++f) gf[f] = ge[f * T + i];
            fv gi;  // (a plain float when F == 1)
            std::memcpy(&gi, gf, sizeof(gi));
            for (int c = 0; c < 8; ++c) {
                float* e = g + size_t(idx[c * T + i]) * F;
                fv v;
                std::memcpy(&v, e, sizeof(v));
                v += w[c * T + i] * gi;
                std::memcpy(e, &v, sizeof(v));
            }
        }
    }
}

}  // namespace
}  // namespace inr
