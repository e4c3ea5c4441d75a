// Emission-absorption ray marching of one brick: the module insitu._raymarch.
//
// Every ray samples the global lattice t_k = k * dt (t measured from the eye
// along the unit direction), and a brick takes only the samples inside its own
// half-open ownership box [lo, hi). Neighbouring bricks therefore share no
// sample and miss none, and compositing their segments in depth order gives the
// same image as marching the whole volume at once (no seams, any brick count).
// The numpy implementation in insitu/render/raymarch.py is the reference.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace py = pybind11;
using f32array = py::array_t<float, py::array::c_style | py::array::forcecast>;
using f64array = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

struct Volume {
    const float* v;
    long nx, ny, nz;
    double o[3], h[3];  // world position of sample [0,0,0] and spacing, (x, y, z)
    double inv_h[3];    // 1 / h: a sample multiplies (a division per axis was a fifth of the march)

    // The trilinear base of a world point, clamped to the brick's samples: the lower corner i and the
    // fractions f along each axis (x, y, z).
    void base(const double p[3], long i[3], double f[3]) const {
        const long n[3] = {nx, ny, nz};
        for (int a = 0; a < 3; ++a) {
            double c = (p[a] - o[a]) * inv_h[a];
            c = std::min(std::max(c, 0.0), double(n[a] - 1));
            i[a] = std::min(long(c), std::max(n[a] - 2, 0L));
            f[a] = n[a] > 1 ? c - double(i[a]) : 0.0;
        }
    }

    // Trilinear value at a base.
    float at(const long i0[3], const double f[3]) const {
        const long sx = 1, sy = nx, sz = nx * ny;
        const long dx = nx > 1 ? sx : 0, dy = ny > 1 ? sy : 0, dz = nz > 1 ? sz : 0;
        const float* b = v + i0[2] * sz + i0[1] * sy + i0[0] * sx;
        const double c00 = b[0] * (1 - f[0]) + b[dx] * f[0];
        const double c10 = b[dy] * (1 - f[0]) + b[dy + dx] * f[0];
        const double c01 = b[dz] * (1 - f[0]) + b[dz + dx] * f[0];
        const double c11 = b[dz + dy] * (1 - f[0]) + b[dz + dy + dx] * f[0];
        const double c0 = c00 * (1 - f[1]) + c10 * f[1];
        const double c1 = c01 * (1 - f[1]) + c11 * f[1];
        return float(c0 * (1 - f[2]) + c1 * f[2]);
    }

    // Trilinear value at a world point, clamped to the brick's samples.
    float sample(double px, double py, double pz) const {
        const double p[3] = {px, py, pz};
        long i[3];
        double f[3];
        base(p, i, f);
        return at(i, f);
    }
};

// Empty-space skipping: the brick in cells of CELL x CELL x CELL trilinear bases, each marked clear when every
// value a sample with its base in the cell can take (the corners' range) maps to zero opacity. A sample in a
// clear cell would add nothing, so the march jumps to where the ray leaves the cell: the same image, in the
// time of the samples that show something.
constexpr long CELL = 8;

struct Clear {
    long n[3] = {0, 0, 0};  // cells per axis (x, y, z)
    std::vector<uint8_t> clear;
    const Volume* vol = nullptr;

    Clear(const Volume& v, const float* lut, long n_lut, double vmin, double scale) : vol(&v) {
        const long nv[3] = {v.nx, v.ny, v.nz};
        for (int a = 0; a < 3; ++a) n[a] = (std::max(nv[a] - 1, 1L) + CELL - 1) / CELL;
        // which LUT entries are transparent, as prefix counts: a value interval [lo, hi] is clear when every
        // entry from floor(lo) to ceil(hi) has alpha <= 0 (the interpolated alpha then is too)
        std::vector<long> opaque(n_lut + 1, 0);
        for (long i = 0; i < n_lut; ++i) opaque[i + 1] = opaque[i] + (lut[4 * i + 3] > 0.0f);
        auto entry = [&](double value) {
            return std::min(std::max((value - vmin) * scale, 0.0), double(n_lut - 1));
        };
        clear.assign(size_t(n[0] * n[1] * n[2]), 0);
        for (long cz = 0; cz < n[2]; ++cz)
            for (long cy = 0; cy < n[1]; ++cy)
                for (long cx = 0; cx < n[0]; ++cx) {
                    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
                    for (long z = cz * CELL; z <= std::min(cz * CELL + CELL, v.nz - 1); ++z)
                        for (long y = cy * CELL; y <= std::min(cy * CELL + CELL, v.ny - 1); ++y) {
                            const float* row = v.v + (z * v.ny + y) * v.nx;
                            for (long x = cx * CELL; x <= std::min(cx * CELL + CELL, v.nx - 1); ++x) {
                                if (!std::isfinite(row[x])) continue;  // NaN/Inf samples are transparent
                                lo = std::min(lo, row[x]);
                                hi = std::max(hi, row[x]);
                            }
                        }
                    bool is_clear = true;
                    if (lo <= hi) {  // one entry of margin each side: a sample may round an ulp past its corners
                        const long a = std::max(long(entry(lo)) - 1, 0L);
                        const long b = std::min(long(std::ceil(entry(hi))) + 1, n_lut - 1);
                        is_clear = opaque[b + 1] - opaque[a] == 0;
                    }
                    clear[size_t((cz * n[1] + cy) * n[0] + cx)] = is_clear;
                }
    }

    // Where the ray e + t d leaves the clear cell of the trilinear base i (Volume::base), or -1 when that cell
    // shows something.
    double exit(const long i[3], const double e[3], const double d[3]) const {
        long c[3];
        for (int a = 0; a < 3; ++a) c[a] = i[a] / CELL;
        if (!clear[size_t((c[2] * n[1] + c[1]) * n[0] + c[0])]) return -1.0;
        double t = std::numeric_limits<double>::infinity();
        for (int a = 0; a < 3; ++a) {  // the cell's faces in world space; the outer cells reach past the brick
            const long face = d[a] > 0.0 ? (c[a] + 1 < n[a] ? c[a] + 1 : -1) : d[a] < 0.0 && c[a] > 0 ? c[a] : -1;
            if (face >= 0) t = std::min(t, (vol->o[a] + double(face * CELL) * vol->h[a] - e[a]) / d[a]);
        }
        return t;
    }
};

// Entry and exit distances of a ray through the box [lo, hi]; false when it misses.
bool slab(const double e[3], const double d[3], const double lo[3], const double hi[3], double& t0, double& t1) {
    t0 = 0.0;
    t1 = std::numeric_limits<double>::infinity();
    for (int a = 0; a < 3; ++a) {
        if (d[a] == 0.0) {
            if (e[a] < lo[a] || e[a] >= hi[a]) return false;
            continue;
        }
        double ta = (lo[a] - e[a]) / d[a], tb = (hi[a] - e[a]) / d[a];
        if (ta > tb) std::swap(ta, tb);
        t0 = std::max(t0, ta);
        t1 = std::min(t1, tb);
    }
    return t0 < t1;
}

bool inside(const double p[3], const double lo[3], const double hi[3]) {
    for (int a = 0; a < 3; ++a)
        if (!(p[a] >= lo[a] && p[a] < hi[a])) return false;
    return true;
}

// The brick, its owned box and the eye, checked once for both marchers.
struct Scene {
    Volume vol;
    double lo[3], hi[3], eye[3];
};

Scene scene(const f32array& values, const f64array& origin, const f64array& spacing, const f64array& lo,
            const f64array& hi, const f64array& eye, const f32array& dirs) {
    if (values.ndim() != 3) throw std::invalid_argument("values must be a 3D (z, y, x) array");
    if (dirs.ndim() != 2 || dirs.shape(1) != 3) throw std::invalid_argument("dirs must have shape (n_rays, 3)");
    if (origin.size() != 3 || spacing.size() != 3 || lo.size() != 3 || hi.size() != 3 || eye.size() != 3)
        throw std::invalid_argument("origin, spacing, lo, hi and eye are (x, y, z) triples");
    Scene sc{{values.data(), long(values.shape(2)), long(values.shape(1)), long(values.shape(0)), {}, {}, {}}, {}, {}, {}};
    for (int a = 0; a < 3; ++a) {
        sc.vol.o[a] = origin.data()[a];
        sc.vol.h[a] = spacing.data()[a];
        sc.vol.inv_h[a] = 1.0 / sc.vol.h[a];
        sc.lo[a] = lo.data()[a];
        sc.hi[a] = hi.data()[a];
        sc.eye[a] = eye.data()[a];
        if (!(sc.vol.h[a] > 0)) throw std::invalid_argument("spacing must be positive");
    }
    return sc;
}

// Marches every pixel's ray through the brick; writes premultiplied RGBA and the
// entry depth (inf where the brick contributes nothing).
void march(f32array values, f64array origin, f64array spacing, f64array lo, f64array hi, f64array eye,
           f32array dirs, f32array stop, f32array lut, double vmin, double vmax, double dt, double unit,
           py::array_t<float, py::array::c_style> rgba, py::array_t<float, py::array::c_style> depth) {
    const long n_rays = long(dirs.size() / 3);
    if (stop.size() != n_rays || depth.size() != n_rays || rgba.size() != 4 * n_rays)
        throw std::invalid_argument("stop, depth and rgba must have one entry (rgba: four) per ray");
    if (lut.ndim() != 2 || lut.shape(1) != 4 || lut.shape(0) < 2)
        throw std::invalid_argument("lut must have shape (n >= 2, 4)");
    if (!(dt > 0) || !(unit > 0)) throw std::invalid_argument("dt and unit must be positive");
    const Scene sc = scene(values, origin, spacing, lo, hi, eye, dirs);
    const Volume& vol = sc.vol;
    const double *blo = sc.lo, *bhi = sc.hi, *e = sc.eye;
    const float* D = dirs.data();
    const float* S = stop.data();
    const float* L = lut.data();
    const long n_lut = long(lut.shape(0));
    const double scale = vmax > vmin ? double(n_lut - 1) / (vmax - vmin) : 0.0;
    const double ratio = dt / unit;
    float* out = rgba.mutable_data();
    float* dep = depth.mutable_data();
    py::gil_scoped_release release;
    const Clear empty(vol, L, n_lut, vmin, scale);
#pragma omp parallel for schedule(dynamic, 64)
    for (long r = 0; r < n_rays; ++r) {
        const double d[3] = {D[3 * r], D[3 * r + 1], D[3 * r + 2]};
        double t0, t1;
        float acc[4] = {0, 0, 0, 0};
        float first = std::numeric_limits<float>::infinity();
        if (slab(e, d, blo, bhi, t0, t1)) {
            t1 = std::min(t1, double(S[r]));
            for (double k = std::ceil(t0 / dt); k * dt < t1; k += 1.0) {
                const double t = k * dt;
                const double p[3] = {e[0] + t * d[0], e[1] + t * d[1], e[2] + t * d[2]};
                if (!inside(p, blo, bhi)) continue;  // rounding at the faces: the neighbour takes it
                if (first == std::numeric_limits<float>::infinity()) first = float(t);
                long base[3];
                double frac[3];
                vol.base(p, base, frac);
                const double leave = empty.exit(base, e, d);
                if (leave >= 0.0) {  // a clear cell: on to the last lattice sample before it leaves (one dt of margin)
                    k = std::max(k, std::floor(leave / dt) - 1.0);
                    continue;
                }
                const float v = vol.at(base, frac);
                if (!std::isfinite(v)) continue;  // NaN/Inf samples (masked data) are transparent
                const double x = std::min(std::max((v - vmin) * scale, 0.0), double(n_lut - 1));
                const long i = std::min(long(x), n_lut - 2);
                const double f = x - double(i);
                const float* c0 = L + 4 * i;
                const double a_unit = c0[3] * (1 - f) + c0[7] * f;
                if (a_unit <= 0.0) continue;
                const double a = 1.0 - std::pow(1.0 - std::min(a_unit, 0.999999), ratio);
                const double w = (1.0 - acc[3]) * a;
                for (int c = 0; c < 3; ++c) acc[c] += float(w * (c0[c] * (1 - f) + c0[4 + c] * f));
                acc[3] += float(w);
                if (acc[3] > 0.9995f) break;  // early ray termination
            }
        }
        for (int c = 0; c < 4; ++c) out[4 * r + c] = acc[c];
        dep[r] = acc[3] > 0.0f ? first : std::numeric_limits<float>::infinity();
    }
}

// First crossing of any iso value along every ray, for samples this brick owns. The sample just
// before the brick's first one (within the margin) is looked at too, so a crossing between two
// bricks' samples belongs to the brick owning the later sample: found once, never missed.
// Writes the hit distance (inf: none) and the headlight shading |n . d| from the gradient.
void march_iso(f32array values, f64array origin, f64array spacing, f64array lo, f64array hi, f64array eye,
               f32array dirs, f64array isos, double dt, py::array_t<float, py::array::c_style> hit,
               py::array_t<float, py::array::c_style> shade) {
    const long n_rays = long(dirs.size() / 3);
    if (hit.size() != n_rays || shade.size() != n_rays) throw std::invalid_argument("hit/shade: one per ray");
    if (!(dt > 0)) throw std::invalid_argument("dt must be positive");
    const Scene sc = scene(values, origin, spacing, lo, hi, eye, dirs);
    const Volume& vol = sc.vol;
    const double *blo = sc.lo, *bhi = sc.hi, *e = sc.eye;
    const double* iso = isos.data();
    const long n_iso = long(isos.size());
    const float* D = dirs.data();
    float* H = hit.mutable_data();
    float* S = shade.mutable_data();
    py::gil_scoped_release release;
#pragma omp parallel for schedule(dynamic, 64)
    for (long r = 0; r < n_rays; ++r) {
        const double d[3] = {D[3 * r], D[3 * r + 1], D[3 * r + 2]};
        double t0, t1;
        H[r] = std::numeric_limits<float>::infinity();
        S[r] = 0.0f;
        if (!slab(e, d, blo, bhi, t0, t1)) continue;
        double k = std::ceil(t0 / dt);
        double tp = (k - 1.0) * dt;
        float vp = vol.sample(e[0] + tp * d[0], e[1] + tp * d[1], e[2] + tp * d[2]);
        for (; k * dt < t1; k += 1.0) {
            const double t = k * dt;
            const double p[3] = {e[0] + t * d[0], e[1] + t * d[1], e[2] + t * d[2]};
            const float v = vol.sample(p[0], p[1], p[2]);
            const bool mine = inside(p, blo, bhi);
            double best = 2.0;
            if (mine && std::isfinite(v) && std::isfinite(vp))
                for (long i = 0; i < n_iso; ++i)
                    if ((vp - iso[i]) * (v - iso[i]) < 0.0 || (v == iso[i] && vp != iso[i]))
                        best = std::min(best, (iso[i] - vp) / double(v - vp));
            if (best <= 1.0) {
                const double th = tp + best * (t - tp);
                const double q[3] = {e[0] + th * d[0], e[1] + th * d[1], e[2] + th * d[2]};
                double g[3], norm = 0.0, dot = 0.0;
                for (int a = 0; a < 3; ++a) {
                    double qa[3] = {q[0], q[1], q[2]}, qb[3] = {q[0], q[1], q[2]};
                    qa[a] -= 0.5 * vol.h[a];
                    qb[a] += 0.5 * vol.h[a];
                    g[a] = (vol.sample(qb[0], qb[1], qb[2]) - vol.sample(qa[0], qa[1], qa[2])) / vol.h[a];
                    norm += g[a] * g[a];
                    dot += g[a] * d[a];
                }
                H[r] = float(th);
                S[r] = norm > 0.0 ? float(std::fabs(dot) / std::sqrt(norm)) : 1.0f;
                break;
            }
            tp = t;
            vp = v;
        }
    }
}

}  // namespace

PYBIND11_MODULE(_raymarch, m) {
    m.doc() = "Native emission-absorption ray marching of one brick (see insitu/render/raymarch.py)";
    m.def("march", &march, py::arg("values"), py::arg("origin"), py::arg("spacing"), py::arg("lo"),
          py::arg("hi"), py::arg("eye"), py::arg("dirs"), py::arg("stop"), py::arg("lut"), py::arg("vmin"),
          py::arg("vmax"), py::arg("dt"), py::arg("unit"), py::arg("rgba"), py::arg("depth"));
    m.def("march_iso", &march_iso, py::arg("values"), py::arg("origin"), py::arg("spacing"), py::arg("lo"),
          py::arg("hi"), py::arg("eye"), py::arg("dirs"), py::arg("isos"), py::arg("dt"), py::arg("hit"),
          py::arg("shade"));
}
