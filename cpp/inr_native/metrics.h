// The error of a reconstruction in one pass over both grids (inr/metrics.py has the definitions).
#pragma once

#include <pybind11/pybind11.h>

namespace inr {

// Registers error_stats on the module.
void register_metrics(pybind11::module_& m);

}  // namespace inr
