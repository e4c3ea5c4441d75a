// Hash-grid encoding on the CPU, index for index the same as inr/hashgrid.py
// (tiny-cuda-nn's HashGrid, 3D, linear interpolation).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace inr {

// Per-level constants, computed once in Python (inr.config) and passed in, so
// both backends use the very same float32 scales and table sizes.
struct Levels {
    int n_levels = 0;
    int n_features = 0;                 // per level
    std::vector<float> scale;           // x * scale + 0.5
    std::vector<uint32_t> resolution;   // ceil(scale) + 1
    std::vector<uint32_t> size;         // entries in the level's table
    std::vector<uint32_t> offset;       // first entry of the level's table
    std::vector<uint8_t> dense;         // res^3 fits the table: dense indexing
};

constexpr uint32_t kPrime1 = 2654435761u;
constexpr uint32_t kPrime2 = 805459861u;

inline uint32_t corner_index(const Levels& lv, int level, uint32_t x, uint32_t y, uint32_t z) {
    uint32_t idx;
    if (lv.dense[level]) {
        const uint32_t r = lv.resolution[level];
        idx = x + y * r + z * r * r;
    } else {
        idx = x ^ (y * kPrime1) ^ (z * kPrime2);   // uint32 wrap-around, as on the GPU
    }
    return idx % lv.size[level];
}

// Cell and fractional position of p (in [0,1]) at a level. Written as a separate
// multiply and add (the build disables FP contraction) so that floor() sees the
// same float32 value as torch's x*scale + 0.5.
inline void cell_and_fraction(float p, float scale, uint32_t& cell, float& frac) {
    const float pos = p * scale + 0.5f;
    const float fl = std::floor(pos);
    cell = static_cast<uint32_t>(static_cast<int>(fl));
    frac = pos - fl;
}

// Encode one point: writes n_levels * n_features floats to out (level-major).
inline void encode_point(const Levels& lv, const float* table, const float p[3], float* out) {
    const int F = lv.n_features;
    for (int l = 0; l < lv.n_levels; ++l) {
        uint32_t c[3];
        float f[3];
        for (int d = 0; d < 3; ++d) cell_and_fraction(p[d], lv.scale[l], c[d], f[d]);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const float* tab = table + static_cast<size_t>(lv.offset[l]) * F;
        for (int corner = 0; corner < 8; ++corner) {
            const int bx = corner & 1, by = (corner >> 1) & 1, bz = (corner >> 2) & 1;
            const float w = (bx ? f[0] : 1.f - f[0]) * (by ? f[1] : 1.f - f[1]) * (bz ? f[2] : 1.f - f[2]);
            const uint32_t idx = corner_index(lv, l, c[0] + bx, c[1] + by, c[2] + bz);
            const float* e = tab + static_cast<size_t>(idx) * F;
            for (int k = 0; k < F; ++k) acc[k] += w * e[k];
        }
        for (int k = 0; k < F; ++k) out[l * F + k] = acc[k];
    }
}

}  // namespace inr
