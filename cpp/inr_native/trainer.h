// Training on the CPU: random batches of grid samples, forward + backward in
// tiles, per-partition gradient buffers summed once per step, then Adam.
#pragma once

#include <cstdint>
#include <vector>

#include "adam.h"
#include "kernels.h"
#include "model.h"

namespace inr {

// The samples of one fit: the whole block, normalised, C order (z, y, x).
struct TrainData {
    std::vector<float> target;
    std::vector<float> weight;  // empty: all ones
    std::vector<float> xs, ys, zs;
    size_t batch_size = 1 << 16;
    int loss = kL2;
};

class Trainer {
   public:
    // partitions: the batch is split into this many fixed slices, each with its
    // own gradient buffer, summed in a fixed order: results are identical for
    // any thread count. (Memory: partitions x parameters floats.)
    Trainer(Model model, const float* params0, TrainData data, uint64_t seed, int threads, int partitions);

    // n steps at learning rate lr; returns the last step's loss.
    float step(int n, float lr);
    const Floats& params() const { return params_; }
    long steps() const { return t_; }

   private:
    Model model_;
    TrainData data_;
    uint64_t seed_;
    int threads_, partitions_;
    long t_ = 0;
    Floats params_, m_, v_;
    std::vector<Floats> grads_, scratch_;
    std::vector<double> loss_;
};

// Mean loss and its gradient w.r.t. the flat parameters at arbitrary points
// (N x 3, x y z), computed by the training kernels (for parity tests).
double loss_gradient(const Model& model, const float* params, const float* points, const float* target,
                     const float* weight, size_t n, int loss, float* grad);

}  // namespace inr
