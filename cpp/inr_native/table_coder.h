// Table coding of the residual codes (static per-context tables, interleaved rANS): inr/table_coding.py has the
// reference and the format.
#pragma once

#include <pybind11/pybind11.h>

namespace inr {

// Registers table_encode / table_decode on the module.
void register_table_coder(pybind11::module_& m);

}  // namespace inr
