// Picks the kernel build for the best instruction set this CPU supports.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"

namespace inr {

extern const Kernels kernels_baseline;
#ifdef INR_HAVE_AVX2
extern const Kernels kernels_avx2;
#endif
#ifdef INR_HAVE_AVX512
extern const Kernels kernels_avx512;
#endif

namespace {

bool cpu_has_avx512() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

bool cpu_has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
}

const Kernels& pick() {
    // INR_NATIVE_ISA caps the choice (to compare builds, or to dodge a bad one).
    const char* cap = std::getenv("INR_NATIVE_ISA");
    const bool any = cap == nullptr || *cap == '\0';
    auto allowed = [&](const char* isa, const char* above) {
        return any || std::strcmp(cap, isa) == 0 || (above && std::strcmp(cap, above) == 0);
    };
    (void)allowed;
#if defined(INR_HAVE_AVX512)
    if (allowed("avx512", nullptr) && cpu_has_avx512()) return kernels_avx512;
#endif
#if defined(INR_HAVE_AVX2)
    if (allowed("avx2", "avx512") && cpu_has_avx2()) return kernels_avx2;
#endif
    return kernels_baseline;
}

}  // namespace

std::vector<std::string> runnable_isas() {
    std::vector<std::string> out{"baseline"};
#if defined(INR_HAVE_AVX2)
    if (cpu_has_avx2()) out.push_back("avx2");
#endif
#if defined(INR_HAVE_AVX512)
    if (cpu_has_avx512()) out.push_back("avx512");
#endif
    return out;
}

const Kernels& kernels() {
    static const Kernels& k = pick();
    return k;
}

}  // namespace inr
