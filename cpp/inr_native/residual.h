// The error-bounded mode's residual passes (inr/residual.py has the numpy reference and the format).
#pragma once

#include <pybind11/pybind11.h>

namespace inr {

// Registers residual_encode_pass / residual_decode_pass on the module.
void register_residual(pybind11::module_& m);

}  // namespace inr
