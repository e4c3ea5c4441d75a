// One coarse-to-fine pass of the residual coder (inr/residual.py) for the modes that do not read the
// network: zero, linear and cubic interpolation along the pass's axis. Every operation is the numpy
// reference's, in the same order, in double (built with -ffp-contract=off), so either side decodes
// what the other encoded bit for bit.
#include "residual.h"

#include "entropy.h"
#include "kernels.h"

#include <pybind11/numpy.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <algorithm>
#include <vector>

namespace py = pybind11;

namespace inr {
namespace {

struct Pass {
    int64_t n[3];       // grid shape (z, y, x)
    int64_t stride[3];  // view stride per axis (the pass axis: h)
    int axis;
    int64_t h;
    int mode;  // 0 zero, 1 linear, 2 cubic
};

// The prediction kind (kernel_residual.h predict_kind) of a target at coord along the pass's axis: 0 zero, 1 the
// left value (no right one), 2 linear, 3 cubic; picked once per run of targets (each_run).
inline int kind_of(const Pass& p, int64_t coord) {
    const int64_t n = p.n[p.axis], h = p.h;
    if (p.mode == 0) return 0;
    if (coord + h >= n) return 1;
    return p.mode == 2 && coord - 3 * h >= 0 && coord + 3 * h < n ? 3 : 2;
}

// How far apart a target's neighbours along the pass's axis lie in the grid: h samples along that axis.
inline int64_t offset_of(const Pass& p) {
    return p.h * (p.axis == 0 ? p.n[1] * p.n[2] : p.axis == 1 ? p.n[2] : 1);
}

// The targets of a pass on each axis: the first coordinate, the step and how many (every sub-th line across
// the pass's axis: sub > 1 is the subsample the encoder tries modes on).
struct Lattice {
    int64_t first[3], step[3], count[3];
};

Lattice lattice_of(const Pass& p, int64_t sub = 1) {
    Lattice l{};
    for (int a = 0; a < 3; ++a) {
        l.first[a] = a == p.axis ? p.h : 0;
        l.step[a] = a == p.axis ? 2 * p.h : p.stride[a] * sub;
        l.count[a] = l.first[a] < p.n[a] ? (p.n[a] - 1 - l.first[a]) / l.step[a] + 1 : 0;
    }
    return l;
}

Pass make_pass(const py::array& grid, py::tuple strides, int axis, int64_t h, int mode) {
    if (grid.ndim() != 3) throw std::invalid_argument("residual pass: the grid must be 3D");
    if (axis < 0 || axis > 2 || mode < 0 || mode > 2 || h < 1 || strides.size() != 3)
        throw std::invalid_argument("residual pass: axis in 0..2, mode in 0..2 (zero, lin, cub), h >= 1, 3 strides");
    Pass p{};
    for (int a = 0; a < 3; ++a) {
        p.n[a] = grid.shape(a);
        p.stride[a] = strides[a].cast<int64_t>();
    }
    p.axis = axis, p.h = h, p.mode = mode;
    return p;
}

int64_t target_count(const Pass& p) {
    const Lattice l = lattice_of(p);
    return l.count[0] * l.count[1] * l.count[2];
}

// A pass's targets are independent of each other (each reads only samples decoded by earlier passes), so a pass
// of at least this many runs on several threads, each on a contiguous range of the lattice's outermost index.
constexpr int64_t PARALLEL_TARGETS = int64_t{1} << 15;

// fn(chunk, i0, i1) for `chunks` contiguous ranges of [0, count) in order, on as many threads.
template <class F>
void in_chunks(int64_t count, int chunks, F&& fn) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1) if (chunks > 1)
    for (int c = 0; c < chunks; ++c) fn(c, count * c / chunks, count * (c + 1) / chunks);
}

// How many threads a pass of n targets over `count` outermost lattice entries runs on.
int chunks_for(int64_t n, int64_t count, int threads) {
    return n >= PARALLEL_TARGETS ? static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, count))) : 1;
}

// Where the prediction kind changes along the targets of a line of pass p: (first target, kind) of each stretch of
// one kind. The kind of a target depends only on its coordinate along the pass's axis, so for an x pass the
// stretches are the same on every line (and one stretch for y and z passes, whose lines lie across the axis).
struct Stretch {
    int64_t first;
    int kind;
};

std::vector<Stretch> stretches_of(const Pass& p, const Lattice& l) {
    if (p.axis != 2) return {{0, -1}};  // kind from the line's coordinate (each_run)
    std::vector<Stretch> out;
    for (int64_t x = 0; x < l.count[2]; ++x) {
        const int kind = kind_of(p, l.first[2] + x * l.step[2]);
        if (out.empty() || out.back().kind != kind) out.push_back({x, kind});
    }
    return out;
}

// The targets of pass p on lattice l (rows [i0, i1) of its outermost index) in C order of the targets, in runs that
// share one prediction formula (a whole line across the pass's axis for y and z passes; the stretches of one kind
// along x for x passes): f(kind, flat index of the run's first target, its stride, count, index of its first
// target from i0's). The innermost loops (kernel_residual.h) then have no branch on the kind.
template <class F>
void each_run(const Pass& p, const Lattice& l, int64_t i0, int64_t i1, F&& f) {
    const int64_t unit[3] = {p.n[1] * p.n[2], p.n[2], 1};
    const std::vector<Stretch> stretches = stretches_of(p, l);
    int64_t at = 0;
    for (int64_t i = i0; i < i1; ++i) {
        const int64_t c0 = l.first[0] + i * l.step[0];
        for (int64_t j = 0; j < l.count[1]; ++j) {
            const int64_t c1 = l.first[1] + j * l.step[1];
            const int64_t line = c0 * unit[0] + c1 * unit[1];
            const int line_kind = p.axis == 2 ? -1 : kind_of(p, p.axis == 0 ? c0 : c1);
            for (size_t r = 0; r < stretches.size(); ++r) {
                const int64_t x = stretches[r].first;
                const int64_t end = r + 1 < stretches.size() ? stretches[r + 1].first : l.count[2];
                f(line_kind < 0 ? stretches[r].kind : line_kind, line + l.first[2] + x * l.step[2], l.step[2], end - x,
                  at + x);
            }
            at += l.count[2];
        }
    }
}

// Encodes the pass into out (decoded values) and codes[pos:]; returns the flat indices stored exactly.
py::array_t<int64_t> encode_pass(py::array_t<float, py::array::c_style> out,
                                 py::array_t<double, py::array::c_style | py::array::forcecast> data,
                                 py::array_t<int64_t, py::array::c_style> codes, int64_t pos, py::tuple strides,
                                 int axis, int64_t h, int mode, double step, double thresh, int threads) {
    const Pass p = make_pass(out, strides, axis, h, mode);
    for (int a = 0; a < 3; ++a)
        if (data.shape(a) != out.shape(a)) throw std::invalid_argument("residual pass: data and grid shapes differ");
    if (pos < 0 || pos + target_count(p) > codes.size())
        throw std::invalid_argument("residual pass: codes too short for the pass");
    float* g = out.mutable_data();
    const double* d = data.data();
    int64_t* k = codes.mutable_data() + pos;
    const int64_t off = offset_of(p);
    const Lattice l = lattice_of(p);
    const int chunks = chunks_for(target_count(p), l.count[0], threads);
    std::vector<std::vector<int64_t>> exact(chunks);  // per chunk, joined in order: the sequential order
    {
        py::gil_scoped_release release;
        const Kernels& kern = kernels();
        in_chunks(l.count[0], chunks, [&](int c, int64_t i0, int64_t i1) {
            int64_t* kc = k + i0 * l.count[1] * l.count[2];
            each_run(p, l, i0, i1, [&](int kind, int64_t flat, int64_t s, int64_t count, int64_t first) {
                // the run's codes, then its values as the decoder makes them from those codes (the same kernel);
                // a value off its target by more than thresh (or NaN, or either not finite) is stored exactly, code 0
                int64_t* kr = kc + first;
                kern.residual_codes(kind, g + flat, s, count, off, d + flat, step, kr);
                kern.residual_run(kind, g + flat, s, count, off, kr, step, nullptr, nullptr);
                for (int64_t x = 0; x < count; ++x) {
                    const int64_t at = flat + x * s;
                    if (!(std::fabs(static_cast<double>(g[at]) - d[at]) <= thresh)) {  // NaN and inf too
                        kr[x] = 0;
                        g[at] = static_cast<float>(d[at]);
                        exact[c].push_back(at);
                    }
                }
            });
        });
    }
    size_t n_exact = 0;
    for (const auto& e : exact) n_exact += e.size();
    py::array_t<int64_t> idx(static_cast<py::ssize_t>(n_exact));
    int64_t* at = idx.mutable_data();
    for (const auto& e : exact) at = std::copy(e.begin(), e.end(), at);
    return idx;
}

// decode_pass's loop: each run (each_run) through the kernel of this CPU's instruction set.
template <class K>
void decode_targets(const Pass& p, float* g, const K* k, double step, const uint8_t* em, const float* ev,
                    int64_t i0, int64_t i1) {
    // the build for this CPU's instruction set, for codes of K
    const auto run = [] {
        if constexpr (sizeof(K) == sizeof(int32_t)) return kernels().residual_run32;
        else return kernels().residual_run;
    }();
    const Lattice l = lattice_of(p);
    const int64_t off = offset_of(p);
    k += i0 * l.count[1] * l.count[2];
    each_run(p, l, i0, i1, [&](int kind, int64_t flat, int64_t s, int64_t count, int64_t first) {
        run(kind, g + flat, s, count, off, k + first, step, em ? em + flat : nullptr, ev ? ev + flat : nullptr);
    });
}

// decode_into's passes over codes k (int32 or int64) with the GIL released.
template <class K>
void decode_typed(float* g, const K* k, const std::vector<Pass>& ps, const double* steps, const uint8_t* em,
                  const float* ev, int threads) {
    py::gil_scoped_release release;
    for (size_t i = 0; i < ps.size(); ++i) {
        const Pass& p = ps[i];
        const Lattice l = lattice_of(p);
        const int64_t n = target_count(p);
        in_chunks(l.count[0], chunks_for(n, l.count[0], threads),
                  [&](int, int64_t i0, int64_t i1) { decode_targets(p, g, k, steps[i], em, ev, i0, i1); });
        k += n;
    }
}

// Decodes the passes ps, one after the other, from codes[pos:] (int32, as the range decoder gives them, or int64)
// into out, pass i with steps[i]; returns the number of codes read. exact_mask (uint8 grid, or empty) marks the
// samples whose value is exact_values' instead.
int64_t decode_into(py::array_t<float, py::array::c_style>& out, const py::array& codes, int64_t pos,
                    const std::vector<Pass>& ps, const double* steps,
                    const py::array_t<uint8_t, py::array::c_style>& exact_mask,
                    const py::array_t<float, py::array::c_style>& exact_values, int threads) {
    int64_t total = 0;
    for (const Pass& p : ps) total += target_count(p);
    if (pos < 0 || pos + total > codes.size())
        throw std::invalid_argument("residual pass: codes too short for the pass");
    const bool has_exact = exact_mask.size() > 0;
    if (has_exact && (exact_mask.size() != out.size() || exact_values.size() != out.size()))
        throw std::invalid_argument("residual pass: exact mask and values must cover the grid");
    float* g = out.mutable_data();
    const uint8_t* em = has_exact ? exact_mask.data() : nullptr;
    const float* ev = has_exact ? exact_values.data() : nullptr;
    if (codes.dtype().is(py::dtype::of<int32_t>())) {
        const auto narrow = py::array_t<int32_t, py::array::c_style>::ensure(codes);
        decode_typed(g, narrow.data() + pos, ps, steps, em, ev, threads);
        return total;
    }
    const auto wide = py::array_t<int64_t, py::array::c_style>::ensure(codes);
    if (!wide) throw std::invalid_argument("residual pass: the codes must be int32 or int64");
    decode_typed(g, wide.data() + pos, ps, steps, em, ev, threads);
    return total;
}

// Decodes one pass from codes[pos:] into out (see decode_into).
int64_t decode_pass(py::array_t<float, py::array::c_style> out, py::array codes,
                    int64_t pos, py::tuple strides, int axis, int64_t h, int mode, double step,
                    py::array_t<uint8_t, py::array::c_style> exact_mask,
                    py::array_t<float, py::array::c_style> exact_values, int threads) {
    return decode_into(out, codes, pos, {make_pass(out, strides, axis, h, mode)}, &step, exact_mask, exact_values,
                       threads);
}

// decode_pass for passes[i] = (axis, h, stride z, stride y, stride x) with modes[i] and steps[i], one after the
// other (a whole grid's passes after the anchor in one call: a 64^3 grid has 21).
int64_t decode_passes(py::array_t<float, py::array::c_style> out, py::array codes,
                      int64_t pos, py::array_t<int64_t, py::array::c_style> passes,
                      py::array_t<int64_t, py::array::c_style> modes, py::array_t<double, py::array::c_style> steps,
                      py::array_t<uint8_t, py::array::c_style> exact_mask,
                      py::array_t<float, py::array::c_style> exact_values, int threads) {
    const py::ssize_t n_pass = modes.size();
    if (passes.ndim() != 2 || passes.shape(0) != n_pass || passes.shape(1) != 5 || steps.size() != n_pass)
        throw std::invalid_argument("residual passes: (axis, h, 3 strides) rows, one mode and step per pass");
    std::vector<Pass> ps;
    for (py::ssize_t i = 0; i < n_pass; ++i) {
        const int64_t* r = passes.data() + 5 * i;
        ps.push_back(make_pass(out, py::make_tuple(r[2], r[3], r[4]), static_cast<int>(r[0]), r[1],
                               static_cast<int>(modes.data()[i])));
    }
    return decode_into(out, codes, pos, ps, steps.data(), exact_mask, exact_values, threads);
}

inline uint64_t zigzag(int64_t k) { return (static_cast<uint64_t>(k) << 1) ^ static_cast<uint64_t>(k >> 63); }

// Zigzag codes (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) as little-endian byte planes of the narrowest width
// (1, 2, 4 or 8 bytes) that holds them all, plane of the lowest bytes first: (width, planes). Written straight
// into the bytes object (a zigzag copy of the codes first took 73 ms of page faults on 8.7 M codes, now ~10).
py::tuple planes(py::array_t<int64_t, py::array::c_style | py::array::forcecast> codes) {
    const int64_t* k = codes.data();
    const auto n = static_cast<size_t>(codes.size());
    uint64_t top = 0;
    for (size_t i = 0; i < n; ++i) top = std::max(top, zigzag(k[i]));
    const int width = top < (1ull << 8) ? 1 : top < (1ull << 16) ? 2 : top < (1ull << 32) ? 4 : 8;
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<py::ssize_t>(n * width));
    if (!raw) throw py::error_already_set();
    auto out = py::reinterpret_steal<py::bytes>(raw);
    auto* u = reinterpret_cast<uint8_t*>(PyBytes_AsString(raw));
    {
        py::gil_scoped_release release;
        for (int b = 0; b < width; ++b) {
            uint8_t* plane = u + b * n;
            for (size_t i = 0; i < n; ++i) plane[i] = static_cast<uint8_t>(zigzag(k[i]) >> (8 * b));
        }
    }
    return py::make_tuple(width, out);
}

py::array_t<int64_t> unplanes(py::bytes raw_obj, int width, int64_t n) {
    const std::string_view raw(raw_obj);
    if ((width != 1 && width != 2 && width != 4 && width != 8) || n < 0 || static_cast<int64_t>(raw.size()) != n * width)
        throw std::invalid_argument("residual unplanes: width 1, 2, 4 or 8 and n * width bytes");
    py::array_t<int64_t> out(static_cast<py::ssize_t>(n));
    int64_t* k = out.mutable_data();
    const auto* u = reinterpret_cast<const uint8_t*>(raw.data());
    {
        py::gil_scoped_release release;
        if (width == 1) {  // nearly every grid at a PSNR target: one plane, a loop the compiler vectorises
            for (int64_t i = 0; i < n; ++i) {
                const uint64_t z = u[i];
                k[i] = static_cast<int64_t>((z >> 1) ^ (0 - (z & 1)));
            }
        } else {
            for (int64_t i = 0; i < n; ++i) {
                uint64_t z = 0;
                for (int b = 0; b < width; ++b) z |= static_cast<uint64_t>(u[b * n + i]) << (8 * b);
                k[i] = static_cast<int64_t>((z >> 1) ^ (0 - (z & 1)));
            }
        }
    }
    return out;
}

// The sum of the bit lengths of the codes' magnitudes (inr/residual.py _bit_length_sum).
int64_t bit_length_sum(const std::vector<int64_t>& codes) {
    int64_t sum = 0;
    for (int64_t k : codes) {
        const uint64_t mag = magnitude(k);
        sum += mag ? 64 - __builtin_clzll(mag) : 0;
    }
    return sum;
}

// About the bytes of the codes each of modes would give the pass's targets on every sub-th line across its axis,
// range-coded as a pass of its own (entropy_cost: the encoder's trials of those modes; out is only read). Only the
// trials whose bit-length sum s passes inr/residual.py _worth_coding (prune * s <= (prune + 1) * smallest +
// prune * slack) are costed, the others cost INT64_MAX; the modes run on up to `threads` threads at once.
py::list trial_passes(py::array_t<float, py::array::c_style> out,
                      py::array_t<double, py::array::c_style | py::array::forcecast> data, py::tuple strides, int axis,
                      int64_t h, py::array_t<int64_t, py::array::c_style> modes, double step, int64_t sub,
                      int64_t prune, int64_t slack, int threads) {
    if (sub < 1 || prune < 1 || slack < 0)
        throw std::invalid_argument("residual trial: sub >= 1, prune >= 1, slack >= 0");
    std::vector<Pass> ps;
    for (py::ssize_t i = 0; i < modes.size(); ++i)
        ps.push_back(make_pass(out, strides, axis, h, static_cast<int>(modes.data()[i])));
    const float* g = out.data();
    const double* d = data.data();
    int level = 0;
    for (int64_t v = h; v; v >>= 1) ++level;  // the bit length of h, as inr/residual.py's levels
    const int n = static_cast<int>(ps.size());
    const int team = std::max(1, std::min(threads, n));
    std::vector<std::vector<int64_t>> codes(n);
    std::vector<int64_t> sums(n), cost(n, INT64_MAX);
    Lattice l{};
    {
        py::gil_scoped_release release;
#pragma omp parallel for num_threads(team) schedule(dynamic, 1) if (team > 1)
        for (int i = 0; i < n; ++i) {
            const Pass& p = ps[i];
            const int64_t off = offset_of(p);
            const Lattice li = lattice_of(p, sub);
            codes[i].resize(static_cast<size_t>(li.count[0] * li.count[1] * li.count[2]));
            int64_t* k = codes[i].data();
            each_run(p, li, 0, li.count[0], [&](int kind, int64_t flat, int64_t s, int64_t count, int64_t first) {
                kernels().residual_codes(kind, g + flat, s, count, off, d + flat, step, k + first);
            });
            sums[i] = bit_length_sum(codes[i]);
        }
        if (n) l = lattice_of(ps[0], sub);  // the same targets whatever the mode
        const int64_t best = n ? *std::min_element(sums.begin(), sums.end()) : 0;
        std::vector<int> coded;
        for (int i = 0; i < n; ++i)
            if (prune * sums[i] <= (prune + 1) * best + prune * slack) coded.push_back(i);
        const int m = static_cast<int>(coded.size());
#pragma omp parallel for num_threads(std::max(1, std::min(threads, m))) schedule(dynamic, 1) if (m > 1 && threads > 1)
        for (int j = 0; j < m; ++j)
            cost[coded[j]] = entropy_cost(codes[coded[j]].data(), l.count[0], l.count[1], l.count[2], level);
    }
    py::list result;
    for (int64_t c : cost) result.append(c);
    return result;
}

}  // namespace

void register_residual(py::module_& m) {
    m.def("residual_encode_pass", &encode_pass, py::arg("out"), py::arg("data"), py::arg("codes"), py::arg("pos"),
          py::arg("strides"), py::arg("axis"), py::arg("h"), py::arg("mode"), py::arg("step"), py::arg("thresh"),
          py::arg("threads") = 1,
          "Encode one residual pass (modes zero/lin/cub) in place; returns the flat indices stored exactly.");
    m.def("residual_decode_pass", &decode_pass, py::arg("out"), py::arg("codes"), py::arg("pos"), py::arg("strides"),
          py::arg("axis"), py::arg("h"), py::arg("mode"), py::arg("step"), py::arg("exact_mask"),
          py::arg("exact_values"), py::arg("threads") = 1,
          "Decode one residual pass (modes zero/lin/cub) in place; returns codes read.");
    m.def("residual_decode_passes", &decode_passes, py::arg("out"), py::arg("codes"), py::arg("pos"),
          py::arg("passes"), py::arg("modes"), py::arg("steps"), py::arg("exact_mask"), py::arg("exact_values"),
          py::arg("threads") = 1,
          "Decode passes ((axis, h, 3 strides) rows; modes zero/lin/cub) one after the other; returns codes read.");
    m.def("residual_trial_passes", &trial_passes, py::arg("out"), py::arg("data"), py::arg("strides"),
          py::arg("axis"), py::arg("h"), py::arg("modes"), py::arg("step"), py::arg("sub"), py::arg("prune"),
          py::arg("slack"), py::arg("threads") = 1,
          "About the range-coded bytes of the codes each mode (zero/lin/cub) gives a pass's targets on every sub-th "
          "line (INT64_MAX for a trial its bit-length sum rules out).");
    m.def("residual_planes", &planes, py::arg("codes"), "(width, zigzag codes as byte planes).");
    m.def("residual_unplanes", &unplanes, py::arg("raw"), py::arg("width"), py::arg("n"),
          "The codes from their byte planes.");
}

}  // namespace inr
