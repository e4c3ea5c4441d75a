#include "trainer.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "sampler.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace inr {

namespace {

// The samples of one tile, gathered from where they live.
struct TileBuf {
    alignas(64) float x[kTile], y[kTile], z[kTile], target[kTile], weight[kTile];
};

// Runs samples [a, b) of a batch through the kernels, tile by tile; fill(i0, n,
// buf) writes samples i0 .. i0+n-1 into buf. Returns the summed loss.
template <class Fill>
double run_partition(const Kernels& k, const NetView& net, size_t a, size_t b, bool weighted, float grad_scale,
                     int loss, float* grad, float* scratch, Fill fill) {
    TileBuf buf;
    double loss_sum = 0.0;
    k.train_begin(net, scratch);
    for (size_t i0 = a; i0 < b; i0 += kTile) {
        const int n = int(std::min<size_t>(kTile, b - i0));
        fill(i0, n, buf);
        const TrainTile t{buf.x, buf.y, buf.z, buf.target, weighted ? buf.weight : nullptr, n, grad_scale, loss};
        k.train_tile(net, t, grad, &loss_sum, scratch);
    }
    k.train_end(net, grad, scratch);
    return loss_sum;
}

}  // namespace

Trainer::Trainer(Model model, const float* params0, TrainData data, uint64_t seed, int threads, int partitions)
    : model_(std::move(model)), data_(std::move(data)), seed_(seed), threads_(std::max(1, threads)),
      partitions_(std::max(1, partitions)) {
    const size_t n = data_.xs.size() * data_.ys.size() * data_.zs.size();
    if (n == 0 || data_.target.size() != n) throw std::invalid_argument("target must hold nx*ny*nz samples");
    if (!data_.weight.empty() && data_.weight.size() != n) throw std::invalid_argument("weight must match target");
    if (data_.batch_size == 0) throw std::invalid_argument("batch_size must be positive");
    const size_t p = model_.n_params();
    params_ = Floats(p);
    m_ = Floats(p);
    v_ = Floats(p);
    std::memcpy(params_.data(), params0, sizeof(float) * p);
    std::memset(m_.data(), 0, sizeof(float) * p);
    std::memset(v_.data(), 0, sizeof(float) * p);
    for (int i = 0; i < partitions_; ++i) {
        grads_.emplace_back(p);
        std::memset(grads_.back().data(), 0, sizeof(float) * p);
    }
    const size_t scratch = kernels().scratch_floats(model_.view(params_.data()));
    for (int i = 0; i < threads_; ++i) scratch_.emplace_back(scratch);
    loss_.assign(partitions_, 0.0);
}

float Trainer::step(int n_steps, float lr) {
    const Kernels& k = kernels();
    const NetView net = model_.view(params_.data());
    const uint32_t nx = uint32_t(data_.xs.size()), ny = uint32_t(data_.ys.size()), nz = uint32_t(data_.zs.size());
    const size_t n_samples = data_.target.size();
    const bool whole = data_.batch_size >= n_samples;  // the whole grid, in order
    const size_t batch = whole ? n_samples : data_.batch_size;
    const float grad_scale = float(1.0 / double(batch));
    const bool weighted = !data_.weight.empty();
    const float *xs = data_.xs.data(), *ys = data_.ys.data(), *zs = data_.zs.data();
    const float *target = data_.target.data(), *weight = weighted ? data_.weight.data() : nullptr;
    const size_t P = model_.n_params();
    const int K = partitions_;
    double last_loss = 0.0;
    for (int s = 0; s < n_steps; ++s) {
        ++t_;
        const AdamStep adam(AdamConfig{}, t_, lr);
#pragma omp parallel num_threads(threads_)
        {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            float* scratch = scratch_[tid].data();
#pragma omp for schedule(static)
            for (int part = 0; part < K; ++part) {
                const size_t a = batch * part / K, b = batch * (part + 1) / K;
                float* grad = grads_[part].data();
                if (whole) {
                    loss_[part] = run_partition(k, net, a, b, weighted, grad_scale, data_.loss, grad, scratch,
                                                [&](size_t i0, int n, TileBuf& buf) {
                        for (int i = 0; i < n; ++i) {
                            const size_t id = i0 + i;
                            buf.x[i] = xs[id % nx];
                            buf.y[i] = ys[(id / nx) % ny];
                            buf.z[i] = zs[id / (size_t(nx) * ny)];
                            buf.target[i] = target[id];
                            if (weighted) buf.weight[i] = weight[id];
                        }
                    });
                } else {
                    Sampler rng(seed_, uint64_t(t_), uint64_t(part));
                    loss_[part] = run_partition(k, net, a, b, weighted, grad_scale, data_.loss, grad, scratch,
                                                [&](size_t, int n, TileBuf& buf) {
                        // Draw the tile first, prefetching its targets: random reads of a
                        // large block miss the caches, and this lets them overlap.
                        size_t ids[kTile];
                        for (int i = 0; i < n; ++i) {
                            uint32_t ix, iy, iz;
                            rng.point(nx, ny, nz, ix, iy, iz);
                            ids[i] = (size_t(iz) * ny + iy) * nx + ix;
                            __builtin_prefetch(target + ids[i]);
                            if (weighted) __builtin_prefetch(weight + ids[i]);
                            buf.x[i] = xs[ix];
                            buf.y[i] = ys[iy];
                            buf.z[i] = zs[iz];
                        }
                        for (int i = 0; i < n; ++i) buf.target[i] = target[ids[i]];
                        if (weighted)
                            for (int i = 0; i < n; ++i) buf.weight[i] = weight[ids[i]];
                    });
                }
            }
            // Sum the partitions' gradients in a fixed order, clear them, take the Adam step.
            constexpr size_t kBlock = 1024;
            const size_t n_blocks = (P + kBlock - 1) / kBlock;
#pragma omp for schedule(static)
            for (size_t blk = 0; blk < n_blocks; ++blk) {
                const size_t a = blk * kBlock, n = std::min(kBlock, P - a);
                alignas(64) float g[kBlock];
                std::memcpy(g, grads_[0].data() + a, sizeof(float) * n);
                std::memset(grads_[0].data() + a, 0, sizeof(float) * n);
                for (int part = 1; part < K; ++part) {
                    float* gp = grads_[part].data() + a;
                    for (size_t i = 0; i < n; ++i) g[i] += gp[i];
                    std::memset(gp, 0, sizeof(float) * n);
                }
                adam_update(adam, g, params_.data() + a, m_.data() + a, v_.data() + a, n);
            }
        }
        double total = 0.0;
        for (int part = 0; part < K; ++part) total += loss_[part];
        last_loss = total / double(batch);
    }
    return float(last_loss);
}

double loss_gradient(const Model& model, const float* params, const float* points, const float* target,
                     const float* weight, size_t n, int loss, float* grad) {
    const Kernels& k = kernels();
    const NetView net = model.view(params);
    Floats scratch(k.scratch_floats(net));
    std::memset(grad, 0, sizeof(float) * model.n_params());
    const double sum = run_partition(k, net, 0, n, weight != nullptr, float(1.0 / double(n)), loss, grad,
                                     scratch.data(), [&](size_t i0, int m, TileBuf& buf) {
        for (int i = 0; i < m; ++i) {
            buf.x[i] = points[3 * (i0 + i)];
            buf.y[i] = points[3 * (i0 + i) + 1];
            buf.z[i] = points[3 * (i0 + i) + 2];
            buf.target[i] = target[i0 + i];
            if (weight) buf.weight[i] = weight[i0 + i];
        }
    });
    return sum / double(n);
}

}  // namespace inr
