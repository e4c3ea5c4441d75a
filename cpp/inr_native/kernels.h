// Interface of the compute kernels (kernels.cpp), which is compiled once per
// instruction set (baseline, AVX2, AVX-512) and picked at run time (dispatch.cpp).
//
// Only plain structs and pointers cross this boundary: a kernel translation unit
// built with -mavx512f must not emit inline functions or templates (std::vector,
// ...) that the linker could hand to code running on a CPU without AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>

namespace inr {

constexpr int kTile = 128;  // points per tile: a tile's activations stay in L1/L2

// Per-level constants of the hash grid (see hashgrid.h).
struct LevelsView {
    int n_levels;
    int n_features;
    const float* scale;
    const uint32_t* resolution;
    const uint32_t* size;
    const uint32_t* offset;  // first entry of each level's table
    const uint8_t* dense;
};

// A model: hash grid + MLP (no biases, ReLU hidden layers, one output), over a
// flat parameter vector in our layout (inr/layout.py).
struct NetView {
    LevelsView lv;
    int D;               // encoding width = n_levels * n_features
    int W;               // hidden width
    int H;               // hidden layers; there are H + 1 matrices
    const float* mats;   // matrices back to back, row-major [out][in]
    const float* table;  // level-major [level][entry][feature]
};

// Grid coordinates decoded by decode_row: per level, the cell and fraction of
// every coordinate along each axis (cell[a][l * stride[a] + i]); along x the
// stride is a multiple of kTile and the padding repeats the last coordinate.
struct GridCells {
    int n[3];       // nx, ny, nz
    int stride[3];
    const uint32_t* cell[3];
    const float* frac[3];
};

enum Loss : int { kL2 = 0, kL1 = 1 };

// One tile of training samples (n <= kTile; coordinates in [0,1]).
struct TrainTile {
    const float* x;
    const float* y;
    const float* z;
    const float* target;
    const float* weight;  // nullptr: all ones
    int n;
    float grad_scale;     // 1 / batch size: the loss is a mean
    int loss;             // Loss
};

// Entry points of one instruction-set build.
struct Kernels {
    const char* isa;
    // Floats of scratch memory one thread needs (tiles of activations).
    size_t (*scratch_floats)(const NetView& net);
    // A batch partition is train_begin, train_tile for each tile, train_end.
    // train_tile: forward + backward of one tile; adds dLoss/dtable into grad
    // (flat layout) and sum(weight * err^2) (or |err|) into *loss_sum; the MLP
    // weight gradients gather in scratch until train_end adds them into grad.
    void (*train_begin)(const NetView& net, float* scratch);
    void (*train_tile)(const NetView& net, const TrainTile& t, float* grad, double* loss_sum, float* scratch);
    void (*train_end)(const NetView& net, float* grad, float* scratch);
    // Network output at n <= kTile points (x, y, z arrays).
    void (*eval_tile)(const NetView& net, const float* x, const float* y, const float* z, int n, float* out,
                      float* scratch);
    // Network output on grid row (iy, iz): nx values.
    void (*decode_row)(const NetView& net, const GridCells& g, int iy, int iz, float* out, float* scratch);
    // The residual coder's decoding of count targets at t, t + s, ... (kernel_residual.h): prediction kind 0 zero,
    // 1 left, 2 linear, 3 cubic along off, plus code k[x] times step; em (or nullptr) marks exact values in ev.
    // The codes as int64, or as int32 (what the range decoder gives where they fit).
    void (*residual_run)(int kind, float* t, int64_t s, int64_t count, int64_t off, const int64_t* k, double step,
                         const uint8_t* em, const float* ev);
    void (*residual_run32)(int kind, float* t, int64_t s, int64_t count, int64_t off, const int32_t* k, double step,
                           const uint8_t* em, const float* ev);
    // The encoder's codes of count targets sharing one prediction kind (kernel_residual.h): k[x] = rint((d[x * s]
    // - prediction of t[x * s]) / step), for the mode trials.
    void (*residual_codes)(int kind, const float* t, int64_t s, int64_t count, int64_t off, const double* d,
                           double step, int64_t* k);
    // The sum of (a - b)^2 and the largest |a - b| of n values, in float64 (kernel_metrics.h): the same figures
    // from every build. a float32 or float64, b float32.
    void (*error_stats)(const float* a, const float* b, int64_t n, double* sum, double* top);
    void (*error_stats64)(const double* a, const float* b, int64_t n, double* sum, double* top);
};

// The build for the best instruction set this CPU supports (INR_NATIVE_ISA=
// baseline|avx2|avx512 caps it, for tests and measurements).
const Kernels& kernels();

}  // namespace inr

// Outside the kernel builds only (dispatch.cpp, module.cpp): std types are fine here.
#ifndef INR_ISA
#include <string>
#include <vector>
namespace inr {
// Builds compiled into this module that this CPU can run, e.g. {"baseline", "avx2"}.
std::vector<std::string> runnable_isas();

}  // namespace inr
#endif
