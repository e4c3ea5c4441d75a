// Fused decode of one grid row: encoding shared along the row, then the MLP.
// Part of the kernels: included only by kernels.cpp, which is compiled once per
// instruction set; hence everything here sits in an anonymous namespace.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernel_encoding.h"
#include "kernel_mlp.h"
#include "kernel_simd.h"
#include "kernel_tile.h"

namespace inr {
namespace {

// Decode one grid row (fixed y, z). Along the row only x changes, so at each
// level the four (y, z) corners are blended once per x cell ("column": a cell
// index c gives features sum_q wyz[q] * table[entry(c, q)]), and a voxel is a
// lerp of columns c and c+1. At coarse levels many voxels share their columns:
// they are computed once for the row's range of cells; at levels finer than the
// row, two per voxel.
template <int F>
void decode_row_f(const NetView& net, const GridCells& g, int iy, int iz, float* out, float* scratch) {
    const Scratch s = carve(net, scratch);
    const LevelsView& lv = net.lv;
    const int nx = g.n[0];
    constexpr int kCols = 2 * T + kLanes;
    alignas(64) uint32_t cols[kCols];
    alignas(64) float colf[F][kCols];
    for (int x0 = 0; x0 < nx; x0 += T) {
        const int n = nx - x0 < T ? nx - x0 : T, nv = lanes(n);
        for (int l = 0; l < lv.n_levels; ++l) {
            const size_t ly = size_t(l) * g.stride[1] + iy, lz = size_t(l) * g.stride[2] + iz;
            const uint32_t cy = g.cell[1][ly], cz = g.cell[2][lz];
            const float fy = g.frac[1][ly], fz = g.frac[2][lz];
            const uint32_t* cx = g.cell[0] + size_t(l) * g.stride[0] + x0;
            const float* fx = g.frac[0] + size_t(l) * g.stride[0] + x0;
            const uint32_t size = lv.size[l], r = lv.resolution[l];
            uint32_t part[4];  // (y, z) part of the corner entry
            float wyz[4];
            for (int q = 0; q < 4; ++q) {
                const uint32_t by = q & 1, bz = q >> 1;
                part[q] = lv.dense[l] ? (cy + by) * r + (cz + bz) * (r * r) : ((cy + by) * kPrime1) ^ ((cz + bz) * kPrime2);
                wyz[q] = (by ? fy : 1.f - fy) * (bz ? fz : 1.f - fz);
            }
            uint32_t lo = cx[0], hi = cx[0];
            for (int i = 0; i < n; ++i) {
                lo = cx[i] < lo ? cx[i] : lo;
                hi = cx[i] > hi ? cx[i] : hi;
            }
            // shared columns lo..hi+1, or columns cx and cx+1 of each voxel (left half, right half)
            const bool shared = uint64_t(hi) - lo + 2 <= uint64_t(n) + kLanes;
            int ncols;
            if (shared) {
                ncols = int(hi - lo) + 2;
                for (int j = 0; j < ncols; ++j) cols[j] = lo + uint32_t(j);
            } else {
                ncols = 2 * nv;
                for (int i = 0; i < nv; ++i) {
                    cols[i] = i < n ? cx[i] : 0u;
                    cols[nv + i] = i < n ? cx[i] + 1 : 0u;
                }
            }
            for (int j = ncols; j % kLanes; ++j) cols[j] = cols[0];  // pad to whole vectors
            const float* tab = net.table + size_t(lv.offset[l]) * F;
            for (int j0 = 0; j0 < ncols; j0 += kLanes) {
                const vu c = loadu(cols + j0);
                vf acc[F];
                for (int f = 0; f < F; ++f) acc[f] = vf{};
                for (int q = 0; q < 4; ++q) {
                    vu e;
                    if (lv.dense[l]) {
                        e = c + part[q];
                        e = e >= size ? e - size : e;
                    } else {
                        e = (c ^ part[q]) & (size - 1);
                    }
                    e *= uint32_t(F);
                    for (int f = 0; f < F; ++f) acc[f] += wyz[q] * gather(tab + f, e);
                }
                for (int f = 0; f < F; ++f) store(colf[f] + j0, acc[f]);
            }
            float* enc = s.enc + size_t(l) * F * T;
            for (int f = 0; f < F; ++f) {
                const float* c = colf[f];
                float* e = enc + size_t(f) * T;
                for (int i0 = 0; i0 < nv; i0 += kLanes) {
                    const vf fxv = load(fx + i0), one = vf{} + 1.f;
                    vf v;
                    if (shared) {
                        const vu j = loadu(cx + i0) - lo;
                        v = (one - fxv) * gather(c, j) + fxv * gather(c + 1, j);
                    } else {
                        v = (one - fxv) * load(c + i0) + fxv * load(c + nv + i0);
                    }
                    store(e + i0, v);
                }
            }
        }
        mlp_forward(net, s, nv);
        std::memcpy(out + x0, s.out, sizeof(float) * n);
    }
}

}  // namespace
}  // namespace inr
