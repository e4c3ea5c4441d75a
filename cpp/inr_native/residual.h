// The error-bounded mode's residual passes (inr/residual.py has the numpy reference and the format).
#pragma once

#include <pybind11/pybind11.h>

namespace inr {

// Registers residual_encode_pass / _decode_pass / _trial_pass / _planes / _unplanes on the module.
void register_residual(pybind11::module_& m);

}  // namespace inr
