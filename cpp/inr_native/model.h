// A model's shape (hash-grid levels + MLP) and views of it over a flat
// parameter vector in our layout: matrices first, then the tables.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#include "hashgrid.h"
#include "kernels.h"

namespace inr {

struct Model {
    Levels lv;
    int width = 16;   // hidden neurons
    int hidden = 1;   // hidden layers

    int input_width() const { return lv.n_levels * lv.n_features; }
    size_t n_mat_params() const {
        return size_t(width) * input_width() + size_t(width) * width * (hidden - 1) + size_t(width);
    }
    size_t n_table_params() const {
        return lv.n_levels == 0 ? 0 : (size_t(lv.offset.back()) + lv.size.back()) * lv.n_features;
    }
    size_t n_params() const { return n_mat_params() + n_table_params(); }

    NetView view(const float* params) const {
        NetView v;
        v.lv = {lv.n_levels, lv.n_features, lv.scale.data(), lv.resolution.data(), lv.size.data(), lv.offset.data(),
                lv.dense.data()};
        v.D = input_width();
        v.W = width;
        v.H = hidden;
        v.mats = params;
        v.table = params + n_mat_params();
        return v;
    }
};

// 64-byte aligned float array (vector loads, no false sharing between threads).
class Floats {
   public:
    Floats() = default;
    explicit Floats(size_t n) : n_(n), p_(static_cast<float*>(std::aligned_alloc(64, bytes(n)))) {
        if (!p_) throw std::bad_alloc();
    }
    float* data() { return p_.get(); }
    const float* data() const { return p_.get(); }
    size_t size() const { return n_; }
    float& operator[](size_t i) { return p_.get()[i]; }

   private:
    static size_t bytes(size_t n) { return ((n * sizeof(float) + 63) / 64) * 64 + 64; }
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    size_t n_ = 0;
    std::unique_ptr<float, Free> p_;
};

}  // namespace inr
