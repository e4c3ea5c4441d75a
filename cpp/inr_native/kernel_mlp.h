// MLP of a tile (no biases, ReLU hidden layers, one output): forward and backward.
// Part of the kernels: included only by kernels.cpp, which is compiled once per
// instruction set; hence everything here sits in an anonymous namespace.
#pragma once

#include <cstddef>

#include "kernel_simd.h"
#include "kernel_tile.h"

namespace inr {
namespace {

// out[j][i] = sum_k A(j, k) * in[k][i] with A(j, k) = a[j*rs + k*cs], for
// J x T outputs: JB rows x kLanes points of accumulators stay in registers.
template <int JB, bool Relu>
void matmul_rows(const float* a, int rs, int cs, int J, int K, const float* in, float* out, int nv) {
    for (int j0 = 0; j0 < J; j0 += JB) {
        for (int i0 = 0; i0 < nv; i0 += kLanes) {
            vf acc[JB];
            for (int jj = 0; jj < JB; ++jj) acc[jj] = vf{};
            for (int k = 0; k < K; ++k) {
                const vf xk = load(in + size_t(k) * T + i0);
                for (int jj = 0; jj < JB; ++jj) acc[jj] += a[size_t(j0 + jj) * rs + size_t(k) * cs] * xk;
            }
            for (int jj = 0; jj < JB; ++jj) {
                vf o = acc[jj];
                if (Relu) o = o > 0.f ? o : vf{};
                store(out + size_t(j0 + jj) * T + i0, o);
            }
        }
    }
}

template <bool Relu>
void matmul(const float* a, int rs, int cs, int J, int K, const float* in, float* out, int nv) {
    if (J % 8 == 0)
        matmul_rows<8, Relu>(a, rs, cs, J, K, in, out, nv);
    else if (J % 4 == 0)
        matmul_rows<4, Relu>(a, rs, cs, J, K, in, out, nv);
    else
        matmul_rows<1, Relu>(a, rs, cs, J, K, in, out, nv);
}

// Matrix m of the network and its input rows.
inline const float* mat(const NetView& net, int m) {
    if (m == 0) return net.mats;
    return net.mats + size_t(net.W) * net.D + size_t(m - 1) * net.W * net.W;
}
inline int mat_in(const NetView& net, int m) { return m == 0 ? net.D : net.W; }
inline int mat_out(const NetView& net, int m) { return m == net.H ? 1 : net.W; }
inline const float* layer_input(const NetView& net, const Scratch& s, int m) {
    return m == 0 ? s.enc : s.acts + size_t(m - 1) * net.W * T;
}

// The first nv points of the tile (a multiple of kLanes): a partial tile costs less.
void mlp_forward(const NetView& net, const Scratch& s, int nv) {
    for (int m = 0; m < net.H; ++m)
        matmul<true>(mat(net, m), mat_in(net, m), 1, net.W, mat_in(net, m), layer_input(net, s, m),
                     s.acts + size_t(m) * net.W * T, nv);
    matmul<false>(mat(net, net.H), net.W, 1, 1, net.W, layer_input(net, s, net.H), s.out, nv);
}

// dw[j][k][v] += sum over i = v mod kSumLanes of g[j][i] * in[k][i]: partial
// sums in a fixed grouping (see kSumLanes), reduced once per batch partition
// (train_end), so no horizontal sum per tile and no dependence on the ISA.
void weight_grad(const float* g, const float* in, int J, int K, float* dw, int nv) {
    constexpr int R = kSumLanes / kLanes;  // vectors per group of kSumLanes points
    for (int j = 0; j < J; ++j) {
        const float* gj = g + size_t(j) * T;
        for (int k = 0; k < K; ++k) {
            const float* xk = in + size_t(k) * T;
            float* d = dw + (size_t(j) * K + k) * kSumLanes;
            vf acc[R];
            for (int r = 0; r < R; ++r) acc[r] = load(d + r * kLanes);
            for (int i0 = 0; i0 < nv; i0 += kSumLanes)
                for (int r = 0; r < R && i0 + r * kLanes < nv; ++r)
                    acc[r] += load(gj + i0 + r * kLanes) * load(xk + i0 + r * kLanes);
            for (int r = 0; r < R; ++r) store(d + r * kLanes, acc[r]);
        }
    }
}

// Backward from dLoss/dout (s.out overwritten with it) to s.genc, adding weight
// gradients into the lane partial sums s.dw.
void mlp_backward(const NetView& net, const Scratch& s, int nv) {
    const float* gout = s.out;
    float* g = s.g0;
    float* gnext = s.g1;
    size_t dw_at = mats_size(net);
    for (int m = net.H; m >= 0; --m) {
        const int J = mat_out(net, m), K = mat_in(net, m);
        const float* in = layer_input(net, s, m);
        const float* gm = m == net.H ? gout : g;
        dw_at -= size_t(J) * K;
        weight_grad(gm, in, J, K, s.dw + dw_at * kSumLanes, nv);
        // gradient w.r.t. the input: A^T gm, i.e. A(k, j) = a[j*K + k]
        float* gin = m == 0 ? s.genc : gnext;
        matmul<false>(mat(net, m), 1, K, K, J, gm, gin, nv);
        if (m > 0) {  // through the ReLU that produced this input
            for (int k = 0; k < K; ++k) {
                float* gk = gin + size_t(k) * T;
                const float* xk = in + size_t(k) * T;
                for (int i = 0; i < nv; ++i) gk[i] = xk[i] > 0.f ? gk[i] : 0.f;
            }
            float* t = g;
            g = gnext;
            gnext = t;
        }
    }
}

}  // namespace
}  // namespace inr
