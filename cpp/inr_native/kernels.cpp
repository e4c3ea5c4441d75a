// Compute kernels, one build per instruction set (INR_ISA names it, see
// CMakeLists.txt): the entry points of the Kernels table over the parts in
// kernel_simd.h (vector types), kernel_tile.h (scratch), kernel_encoding.h
// (hash grid forward/backward), kernel_mlp.h (MLP forward/backward),
// kernel_row_decode.h (fused grid-row decode) and kernel_residual.h (the residual
// coder's decoding loop). Everything has internal linkage
// except the one Kernels table, so builds for different CPUs never share code.
//
// Data layout inside a tile: structure of arrays, row r of a tile is
// x[r * kTile + i] for point i, so the inner loops run over points and the
// compiler vectorises them without reassociating any sum. Results do not depend
// on the thread count nor on the instruction set: weight-gradient partial sums
// are grouped the same way in every build (kSumLanes, kernel_simd.h).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels.h"
#include "kernel_encoding.h"
#include "kernel_metrics.h"
#include "kernel_mlp.h"
#include "kernel_residual.h"
#include "kernel_row_decode.h"
#include "kernel_simd.h"
#include "kernel_tile.h"

#ifndef INR_ISA
#define INR_ISA baseline
#endif
#define INR_CAT2(a, b) a##b
#define INR_CAT(a, b) INR_CAT2(a, b)
#define INR_STR2(a) #a
#define INR_STR(a) INR_STR2(a)

namespace inr {
namespace {

template <int F>
void train_tile_f(const NetView& net, const TrainTile& t, float* grad, double* loss_sum, float* scratch) {
    const Scratch s = carve(net, scratch);
    alignas(64) float x[T], y[T], z[T];
    for (int i = 0; i < T; ++i) {  // pad the tile with zeros (no gradient flows from them)
        x[i] = i < t.n ? t.x[i] : 0.f;
        y[i] = i < t.n ? t.y[i] : 0.f;
        z[i] = i < t.n ? t.z[i] : 0.f;
    }
    encode_tile<F>(net, x, y, z, s);
    mlp_forward(net, s, lanes(t.n));
    float loss = 0.f;
    for (int i = 0; i < T; ++i) {
        if (i >= t.n) {
            s.out[i] = 0.f;
            continue;
        }
        const float err = s.out[i] - t.target[i];
        const float w = t.weight ? t.weight[i] : 1.f;
        if (t.loss == kL2) {
            loss += w * (err * err);
            s.out[i] = t.grad_scale * w * (2.f * err);
        } else {
            loss += w * std::fabs(err);
            s.out[i] = t.grad_scale * w * (err > 0.f ? 1.f : (err < 0.f ? -1.f : 0.f));
        }
    }
    *loss_sum += loss;
    mlp_backward(net, s, lanes(t.n));
    encode_backward<F>(net, s, t.n, grad + mats_size(net));
}

void train_tile(const NetView& net, const TrainTile& t, float* grad, double* loss_sum, float* scratch) {
    switch (net.lv.n_features) {
        case 1: return train_tile_f<1>(net, t, grad, loss_sum, scratch);
        case 2: return train_tile_f<2>(net, t, grad, loss_sum, scratch);
        case 4: return train_tile_f<4>(net, t, grad, loss_sum, scratch);
        default: return train_tile_f<8>(net, t, grad, loss_sum, scratch);
    }
}

// Start of a batch partition: clear the weight-gradient partial sums.
void train_begin(const NetView& net, float* scratch) {
    const Scratch s = carve(net, scratch);
    std::memset(s.dw, 0, sizeof(float) * mats_size(net) * kSumLanes);
}

// End of a batch partition: add the partial sums (fixed order) into grad.
void train_end(const NetView& net, float* grad, float* scratch) {
    const Scratch s = carve(net, scratch);
    const size_t n = mats_size(net);
    for (size_t p = 0; p < n; ++p) {
        const float* d = s.dw + p * kSumLanes;
        float a[kSumLanes / 2];
        for (int v = 0; v < kSumLanes / 2; ++v) a[v] = d[v] + d[v + kSumLanes / 2];
        for (int h = kSumLanes / 4; h >= 1; h /= 2)
            for (int v = 0; v < h; ++v) a[v] += a[v + h];
        grad[p] += a[0];
    }
}

template <int F>
void eval_tile_f(const NetView& net, const float* x, const float* y, const float* z, int n, float* out,
                 float* scratch) {
    const Scratch s = carve(net, scratch);
    alignas(64) float px[T], py[T], pz[T];
    for (int i = 0; i < T; ++i) {
        px[i] = i < n ? x[i] : 0.f;
        py[i] = i < n ? y[i] : 0.f;
        pz[i] = i < n ? z[i] : 0.f;
    }
    encode_tile<F>(net, px, py, pz, s);
    mlp_forward(net, s, lanes(n));
    std::memcpy(out, s.out, sizeof(float) * n);
}

void eval_tile(const NetView& net, const float* x, const float* y, const float* z, int n, float* out,
               float* scratch) {
    switch (net.lv.n_features) {
        case 1: return eval_tile_f<1>(net, x, y, z, n, out, scratch);
        case 2: return eval_tile_f<2>(net, x, y, z, n, out, scratch);
        case 4: return eval_tile_f<4>(net, x, y, z, n, out, scratch);
        default: return eval_tile_f<8>(net, x, y, z, n, out, scratch);
    }
}

void decode_row(const NetView& net, const GridCells& g, int iy, int iz, float* out, float* scratch) {
    switch (net.lv.n_features) {
        case 1: return decode_row_f<1>(net, g, iy, iz, out, scratch);
        case 2: return decode_row_f<2>(net, g, iy, iz, out, scratch);
        case 4: return decode_row_f<4>(net, g, iy, iz, out, scratch);
        default: return decode_row_f<8>(net, g, iy, iz, out, scratch);
    }
}

}  // namespace

extern const Kernels INR_CAT(kernels_, INR_ISA);
const Kernels INR_CAT(kernels_, INR_ISA) = {INR_STR(INR_ISA), scratch_floats, train_begin, train_tile, train_end,
                                            eval_tile, decode_row, residual_run<int64_t>,
                                            residual_run<int32_t>, residual_codes, error_stats<float>,
                                            error_stats<double>};

}  // namespace inr
