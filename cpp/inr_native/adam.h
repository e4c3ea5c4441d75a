// Adam over the flat parameter vector, as torch.optim.Adam (non-fused) computes it.
#pragma once

#include <cmath>
#include <cstddef>

namespace inr {

struct AdamConfig {
    float beta1 = 0.9f, beta2 = 0.99f, eps = 1e-15f;
};

// Bias-corrected step constants of step t (1-based), in double then rounded,
// like torch's Python-side scalars.
struct AdamStep {
    float one_minus_beta1, beta2, one_minus_beta2, step_size, inv_sqrt_bc2, eps;
    AdamStep(const AdamConfig& c, long t, double lr) {
        const double bc1 = 1.0 - std::pow(double(c.beta1), double(t));
        const double bc2 = 1.0 - std::pow(double(c.beta2), double(t));
        one_minus_beta1 = float(1.0 - double(c.beta1));
        beta2 = c.beta2;
        one_minus_beta2 = float(1.0 - double(c.beta2));
        step_size = float(lr / bc1);
        inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
        eps = c.eps;
    }
};

// m <- lerp(m, g, 1-beta1); v <- beta2 v + (1-beta2) g^2; p -= step * m / (sqrt(v)/sqrt(bc2) + eps)
inline void adam_update(const AdamStep& a, const float* g, float* p, float* m, float* v, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        m[i] += a.one_minus_beta1 * (g[i] - m[i]);
        v[i] = v[i] * a.beta2 + a.one_minus_beta2 * (g[i] * g[i]);
        const float denom = std::sqrt(v[i]) * a.inv_sqrt_bc2 + a.eps;
        p[i] -= a.step_size * (m[i] / denom);
    }
}

}  // namespace inr
