// Python bindings of the native kernels: the module inr._native.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "hashgrid.h"

namespace py = pybind11;
using f32array = py::array_t<float, py::array::c_style | py::array::forcecast>;
using u32array = py::array_t<uint32_t, py::array::c_style | py::array::forcecast>;

namespace {

inr::Levels make_levels(int n_features, f32array scale, u32array resolution, u32array size, u32array offset,
                        py::array_t<uint8_t, py::array::c_style | py::array::forcecast> dense) {
    inr::Levels lv;
    lv.n_levels = static_cast<int>(scale.size());
    lv.n_features = n_features;
    if (resolution.size() != lv.n_levels || size.size() != lv.n_levels || offset.size() != lv.n_levels ||
        dense.size() != lv.n_levels)
        throw std::invalid_argument("level arrays must all have n_levels entries");
    if (n_features != 1 && n_features != 2 && n_features != 4 && n_features != 8)
        throw std::invalid_argument("n_features_per_level must be 1, 2, 4 or 8");
    lv.scale.assign(scale.data(), scale.data() + lv.n_levels);
    lv.resolution.assign(resolution.data(), resolution.data() + lv.n_levels);
    lv.size.assign(size.data(), size.data() + lv.n_levels);
    lv.offset.assign(offset.data(), offset.data() + lv.n_levels);
    lv.dense.assign(dense.data(), dense.data() + lv.n_levels);
    return lv;
}

py::array_t<float> hashgrid_encode(f32array points, f32array table, int n_features, f32array scale,
                                   u32array resolution, u32array size, u32array offset,
                                   py::array_t<uint8_t, py::array::c_style | py::array::forcecast> dense) {
    const inr::Levels lv = make_levels(n_features, scale, resolution, size, offset, dense);
    if (points.ndim() != 2 || points.shape(1) != 3) throw std::invalid_argument("points must have shape (N, 3)");
    const size_t need = static_cast<size_t>(lv.offset.empty() ? 0 : lv.offset.back() + lv.size.back()) * n_features;
    if (static_cast<size_t>(table.size()) != need)
        throw std::invalid_argument("table has " + std::to_string(table.size()) + " values; the levels need " +
                                    std::to_string(need));
    const py::ssize_t n = points.shape(0);
    const int width = lv.n_levels * n_features;
    py::array_t<float> out({n, static_cast<py::ssize_t>(width)});
    const float* p = points.data();
    const float* t = table.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
#pragma omp parallel for schedule(static)
        for (py::ssize_t i = 0; i < n; ++i) inr::encode_point(lv, t, p + 3 * i, o + i * width);
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "insitu-inr native CPU kernels (hash-grid encoding; see cpp/)";
    m.def("hashgrid_encode", &hashgrid_encode, py::arg("points"), py::arg("table"), py::arg("n_features"),
          py::arg("scale"), py::arg("resolution"), py::arg("size"), py::arg("offset"), py::arg("dense"),
          "Encode points (N, 3) in [0,1]^3 with a flat level-major table -> (N, levels*features) float32.");
}
