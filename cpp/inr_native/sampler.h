// Random training samples: uniform grid points, a stream per (seed, step,
// batch partition) so the batch does not depend on how many threads draw it.
#pragma once

#include <cstdint>

namespace inr {

inline uint64_t splitmix64(uint64_t& s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

class Sampler {
   public:
    Sampler(uint64_t seed, uint64_t step, uint64_t partition) : s_(seed) {
        splitmix64(s_);
        s_ ^= step * 0xD1B54A32D192ED03ull;
        splitmix64(s_);
        s_ ^= partition * 0xABC98388FB8FAC03ull;
    }
    // A uniform grid point: independent uniform indices along x, y, z.
    void point(uint32_t nx, uint32_t ny, uint32_t nz, uint32_t& ix, uint32_t& iy, uint32_t& iz) {
        const uint64_t a = splitmix64(s_), b = splitmix64(s_);
        ix = uint32_t((uint64_t(uint32_t(a)) * nx) >> 32);
        iy = uint32_t(((a >> 32) * ny) >> 32);
        iz = uint32_t((uint64_t(uint32_t(b)) * nz) >> 32);
    }

   private:
    uint64_t s_;
};

}  // namespace inr
