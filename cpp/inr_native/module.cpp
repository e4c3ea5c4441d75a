// Python bindings of the native kernels: the module inr._native.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "decode.h"
#include "hashgrid.h"
#include "kernels.h"
#include "model.h"
#include "residual.h"
#include "entropy.h"
#include "table_coder.h"
#include "metrics.h"
#include "trainer.h"

namespace py = pybind11;
using f32array = py::array_t<float, py::array::c_style | py::array::forcecast>;
using u32array = py::array_t<uint32_t, py::array::c_style | py::array::forcecast>;
using u8array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

namespace {

inr::Levels make_levels(int n_features, f32array scale, u32array resolution, u32array size, u32array offset,
                        u8array dense) {
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
    for (int l = 0; l < lv.n_levels; ++l) {
        if (!lv.dense[l] && (lv.size[l] & (lv.size[l] - 1)) != 0)
            throw std::invalid_argument("hashed levels must have power-of-two tables");
        if (uint64_t(lv.size[l]) * n_features >= (uint64_t(1) << 31))  // the kernels gather with int32 offsets
            throw std::invalid_argument("the native kernels take tables of fewer than 2^31 values per level");
    }
    return lv;
}

inr::Model make_model(int n_features, f32array scale, u32array resolution, u32array size, u32array offset,
                      u8array dense, int width, int hidden) {
    if (width < 1 || hidden < 1) throw std::invalid_argument("width and hidden layers must be positive");
    inr::Model m;
    m.lv = make_levels(n_features, scale, resolution, size, offset, dense);
    m.width = width;
    m.hidden = hidden;
    return m;
}

void check_params(const inr::Model& m, const f32array& params) {
    if (static_cast<size_t>(params.size()) != m.n_params())
        throw std::invalid_argument("params has " + std::to_string(params.size()) + " values; the model needs " +
                                    std::to_string(m.n_params()));
}

// The kernels index tables without a general modulo (see kernels.cpp), which
// is exact for coordinates in [0, 1] only: anything else is refused here.
void check_unit(const float* v, size_t n, const char* what) {
    for (size_t i = 0; i < n; ++i)
        if (!(v[i] >= 0.f && v[i] <= 1.f))
            throw std::invalid_argument(std::string(what) + " must be finite and lie in [0, 1]");
}

const float* points_of(const f32array& points) {
    if (points.ndim() != 2 || points.shape(1) != 3) throw std::invalid_argument("points must have shape (N, 3)");
    check_unit(points.data(), points.size(), "points");
    return points.data();
}

int loss_code(const std::string& loss) {
    if (loss == "l2") return inr::kL2;
    if (loss == "l1") return inr::kL1;
    throw std::invalid_argument("loss must be 'l2' or 'l1'");
}

py::array_t<float> hashgrid_encode(f32array points, f32array table, int n_features, f32array scale,
                                   u32array resolution, u32array size, u32array offset, u8array dense) {
    const inr::Levels lv = make_levels(n_features, scale, resolution, size, offset, dense);
    const float* p = points_of(points);
    const size_t need = static_cast<size_t>(lv.offset.empty() ? 0 : lv.offset.back() + lv.size.back()) * n_features;
    if (static_cast<size_t>(table.size()) != need)
        throw std::invalid_argument("table has " + std::to_string(table.size()) + " values; the levels need " +
                                    std::to_string(need));
    const py::ssize_t n = points.shape(0);
    const int width = lv.n_levels * n_features;
    py::array_t<float> out({n, static_cast<py::ssize_t>(width)});
    const float* t = table.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
#pragma omp parallel for schedule(static)
        for (py::ssize_t i = 0; i < n; ++i) inr::encode_point(lv, t, p + 3 * i, o + i * width);
    }
    return out;
}

py::array_t<float> decode_grid(const inr::Model& m, f32array params, f32array xs, f32array ys, f32array zs,
                               int threads) {
    check_params(m, params);
    check_unit(xs.data(), xs.size(), "xs");
    check_unit(ys.data(), ys.size(), "ys");
    check_unit(zs.data(), zs.size(), "zs");
    py::array_t<float> out({zs.size(), ys.size(), xs.size()});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        inr::decode_grid(m, params.data(), xs.data(), xs.size(), ys.data(), ys.size(), zs.data(), zs.size(), o,
                         threads);
    }
    return out;
}

py::array_t<float> evaluate(const inr::Model& m, f32array params, f32array points, int threads) {
    check_params(m, params);
    const float* p = points_of(points);
    const size_t n = points.shape(0);
    py::array_t<float> out(static_cast<py::ssize_t>(n));
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        inr::evaluate(m, params.data(), p, n, o, threads);
    }
    return out;
}

py::tuple loss_gradient(const inr::Model& m, f32array params, f32array points, f32array target,
                        py::object weight, const std::string& loss) {
    check_params(m, params);
    const float* p = points_of(points);
    const size_t n = points.shape(0);
    if (n == 0 || static_cast<size_t>(target.size()) != n) throw std::invalid_argument("target must have N values");
    f32array w;
    if (!weight.is_none()) {
        w = weight.cast<f32array>();
        if (static_cast<size_t>(w.size()) != n) throw std::invalid_argument("weight must have N values");
    }
    py::array_t<float> grad(static_cast<py::ssize_t>(m.n_params()));
    float* g = grad.mutable_data();
    double value;
    {
        py::gil_scoped_release release;
        value = inr::loss_gradient(m, params.data(), p, target.data(), weight.is_none() ? nullptr : w.data(), n,
                                   loss_code(loss), g);
    }
    return py::make_tuple(value, grad);
}

std::unique_ptr<inr::Trainer> make_trainer(const inr::Model& m, f32array params0, f32array target, py::object weight,
                                           f32array xs, f32array ys, f32array zs, size_t batch_size,
                                           const std::string& loss, uint64_t seed, int threads, int partitions) {
    check_params(m, params0);
    inr::TrainData d;
    d.target.assign(target.data(), target.data() + target.size());
    if (!weight.is_none()) {
        f32array w = weight.cast<f32array>();
        d.weight.assign(w.data(), w.data() + w.size());
    }
    check_unit(xs.data(), xs.size(), "xs");
    check_unit(ys.data(), ys.size(), "ys");
    check_unit(zs.data(), zs.size(), "zs");
    d.xs.assign(xs.data(), xs.data() + xs.size());
    d.ys.assign(ys.data(), ys.data() + ys.size());
    d.zs.assign(zs.data(), zs.data() + zs.size());
    d.batch_size = batch_size;
    d.loss = loss_code(loss);
    return std::make_unique<inr::Trainer>(m, params0.data(), std::move(d), seed, threads, partitions);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "insitu-inr native CPU kernels: hash grid + MLP training, grid decode, evaluation (see cpp/inr_native/)";
    m.def("hashgrid_encode", &hashgrid_encode, py::arg("points"), py::arg("table"), py::arg("n_features"),
          py::arg("scale"), py::arg("resolution"), py::arg("size"), py::arg("offset"), py::arg("dense"),
          "Encode points (N, 3) in [0,1]^3 with a flat level-major table -> (N, levels*features) float32.");
    inr::register_residual(m);
    inr::register_entropy(m);
    inr::register_table_coder(m);
    inr::register_metrics(m);
    m.def("isa", [] { return std::string(inr::kernels().isa); }, "Instruction set of the kernels in use.");
    m.def("isas", &inr::runnable_isas,
          "Kernel builds in this module that this CPU can run (values of INR_NATIVE_ISA worth testing).");

    py::class_<inr::Model>(m, "Model", "A model's shape: hash-grid levels (see level_arrays) and MLP width/depth.")
        .def(py::init(&make_model), py::arg("n_features"), py::arg("scale"), py::arg("resolution"), py::arg("size"),
             py::arg("offset"), py::arg("dense"), py::arg("width"), py::arg("hidden"))
        .def_property_readonly("n_params", &inr::Model::n_params);

    m.def("decode_grid", &decode_grid, py::arg("model"), py::arg("params"), py::arg("xs"), py::arg("ys"),
          py::arg("zs"), py::arg("threads"), "Network output on the grid zs x ys x xs -> (nz, ny, nx) float32.");
    m.def("evaluate", &evaluate, py::arg("model"), py::arg("params"), py::arg("points"), py::arg("threads"),
          "Network output at points (N, 3) -> (N,) float32.");
    m.def("loss_gradient", &loss_gradient, py::arg("model"), py::arg("params"), py::arg("points"),
          py::arg("target"), py::arg("weight"), py::arg("loss"),
          "(mean loss, dloss/dparams) at points, through the training kernels.");

    py::class_<inr::Trainer>(m, "Trainer", "Adam on random batches of grid samples (see cpp/inr_native/trainer.h).")
        .def(py::init(&make_trainer), py::arg("model"), py::arg("params0"), py::arg("target"), py::arg("weight"),
             py::arg("xs"), py::arg("ys"), py::arg("zs"), py::arg("batch_size"), py::arg("loss"), py::arg("seed"),
             py::arg("threads"), py::arg("partitions"))
        .def("step", [](inr::Trainer& t, int n, float lr) {
            py::gil_scoped_release release;
            return t.step(n, lr);
        }, py::arg("n_steps"), py::arg("lr"))
        .def("params", [](const inr::Trainer& t) {
            py::array_t<float> out(static_cast<py::ssize_t>(t.params().size()));
            std::copy(t.params().data(), t.params().data() + t.params().size(), out.mutable_data());
            return out;
        })
        .def_property_readonly("steps", &inr::Trainer::steps);
}
