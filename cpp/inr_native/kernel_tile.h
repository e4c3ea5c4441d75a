// Per-thread scratch of a tile: activations, corner indices/weights, gradient partial sums.
// Part of the kernels: included only by kernels.cpp, which is compiled once per
// instruction set; hence everything here sits in an anonymous namespace.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_simd.h"

namespace inr {
namespace {

// Scratch of one thread, carved out of one float buffer.
struct Scratch {
    float* enc;      // D x T encoding
    float* acts;     // H x W x T hidden activations (after ReLU)
    float* out;      // T network outputs
    float* g0;       // W x T gradient w.r.t. a layer's output
    float* g1;       // W x T
    float* genc;     // D x T gradient w.r.t. the encoding
    uint32_t* idx;   // L x 8 x T table entries of the corners
    float* wts;      // L x 8 x T trilinear weights
    float* dw;       // sum of J*K over matrices x kSumLanes weight-gradient partial sums
};

size_t mats_size(const NetView& net) { return size_t(net.W) * net.D + size_t(net.W) * net.W * (net.H - 1) + net.W; }

size_t scratch_floats(const NetView& net) {
    const size_t L = net.lv.n_levels;
    return round16(size_t(net.D) * T) + round16(size_t(net.H) * net.W * T) + round16(T) + 2 * round16(size_t(net.W) * T) +
           round16(size_t(net.D) * T) + 2 * round16(L * 8 * T) + round16(mats_size(net) * kSumLanes) + 16;
}

Scratch carve(const NetView& net, float* base) {
    const size_t L = net.lv.n_levels;
    Scratch s;
    float* p = base;
    auto take = [&p](size_t n) { float* q = p; p += round16(n); return q; };
    s.enc = take(size_t(net.D) * T);
    s.acts = take(size_t(net.H) * net.W * T);
    s.out = take(T);
    s.g0 = take(size_t(net.W) * T);
    s.g1 = take(size_t(net.W) * T);
    s.genc = take(size_t(net.D) * T);
    s.idx = reinterpret_cast<uint32_t*>(take(L * 8 * T));
    s.wts = take(L * 8 * T);
    s.dw = take(mats_size(net) * kSumLanes);
    return s;
}

}  // namespace
}  // namespace inr
