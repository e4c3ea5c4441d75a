// Inference: the network on a tensor grid (fused, row by row) and at points.
#pragma once

#include <cstddef>

#include "model.h"

namespace inr {

// out[(iz * ny + iy) * nx + ix] = network(xs[ix], ys[iy], zs[iz]).
void decode_grid(const Model& model, const float* params, const float* xs, size_t nx, const float* ys, size_t ny,
                 const float* zs, size_t nz, float* out, int threads);

// out[i] = network(points[3i], points[3i+1], points[3i+2]).
void evaluate(const Model& model, const float* params, const float* points, size_t n, float* out, int threads);

}  // namespace inr
