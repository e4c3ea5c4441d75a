// Context-adaptive binary range coding of the residual codes (inr/entropy.py has the reference and the format).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <type_traits>

namespace inr {

// |k| as an unsigned number of k's width, the most negative k included (its magnitude has no signed value).
template <class K>
inline std::make_unsigned_t<K> magnitude(K k) {
    using U = std::make_unsigned_t<K>;
    return k < 0 ? U(0) - static_cast<U>(k) : static_cast<U>(k);
}

// Registers entropy_encode / entropy_decode on the module.
void register_entropy(pybind11::module_& m);

// About the bytes entropy_encode stores for the codes of one pass of targets (nz, ny, nx) at a level (each bit's
// cost under the coder's adaptive probabilities; inr/entropy.py estimate_bytes): what the encoder's mode trials
// are judged by.
int64_t entropy_cost(const int64_t* codes, int64_t nz, int64_t ny, int64_t nx, int64_t level);

}  // namespace inr
