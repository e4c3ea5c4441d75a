#include "decode.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace inr {

void decode_grid(const Model& model, const float* params, const float* xs, size_t nx, const float* ys, size_t ny,
                 const float* zs, size_t nz, float* out, int threads) {
    if (nx == 0 || ny == 0 || nz == 0) return;
    const Kernels& k = kernels();
    const NetView net = model.view(params);
    const int L = model.lv.n_levels;
    // Cell and fraction of every coordinate at every level, once (the same
    // float32 arithmetic as the kernels: see hashgrid.h cell_and_fraction).
    const float* axis[3] = {xs, ys, zs};
    const size_t n[3] = {nx, ny, nz};
    std::vector<uint32_t> cell[3];
    std::vector<float> frac[3];
    GridCells g;
    for (int a = 0; a < 3; ++a) {
        const size_t stride = a == 0 ? (n[a] + kTile - 1) / kTile * kTile : n[a];
        cell[a].resize(L * stride);
        frac[a].resize(L * stride);
        for (int l = 0; l < L; ++l)
            for (size_t i = 0; i < stride; ++i)
                cell_and_fraction(axis[a][std::min(i, n[a] - 1)], model.lv.scale[l], cell[a][l * stride + i],
                                  frac[a][l * stride + i]);
        g.n[a] = int(n[a]);
        g.stride[a] = int(stride);
        g.cell[a] = cell[a].data();
        g.frac[a] = frac[a].data();
    }
    const size_t scratch_n = k.scratch_floats(net);
    const long rows = long(ny * nz);
#pragma omp parallel num_threads(std::max(1, threads))
    {
        Floats scratch(scratch_n);
#pragma omp for schedule(static)
        for (long r = 0; r < rows; ++r)
            k.decode_row(net, g, int(r % long(ny)), int(r / long(ny)), out + size_t(r) * nx, scratch.data());
    }
}

void evaluate(const Model& model, const float* params, const float* points, size_t n, float* out, int threads) {
    const Kernels& k = kernels();
    const NetView net = model.view(params);
    const size_t scratch_n = k.scratch_floats(net);
    const long tiles = long((n + kTile - 1) / kTile);
#pragma omp parallel num_threads(std::max(1, threads))
    {
        Floats scratch(scratch_n);
        alignas(64) float x[kTile], y[kTile], z[kTile];
#pragma omp for schedule(static)
        for (long t = 0; t < tiles; ++t) {
            const size_t a = size_t(t) * kTile;
            const int m = int(std::min<size_t>(kTile, n - a));
            for (int i = 0; i < m; ++i) {
                x[i] = points[3 * (a + i)];
                y[i] = points[3 * (a + i) + 1];
                z[i] = points[3 * (a + i) + 2];
            }
            k.eval_tile(net, x, y, z, m, out + a, scratch.data());
        }
    }
}

}  // namespace inr
