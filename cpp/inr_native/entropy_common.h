// What both coders of the residual codes share (entropy.cpp: adaptive binary range coding; table_coder.cpp: static
// tables and rANS): the pass tables they walk, the neighbour sizes their contexts are built from, and the cost
// of a coded bit.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "entropy.h"

namespace inr {
namespace coding {

namespace py = pybind11;

struct Row {
    int64_t nz, ny, nx, level;
};

// The rows of a pass table ((nz, ny, nx, level) each), checked.
inline std::vector<Row> rows_in(const py::array_t<int64_t, py::array::c_style>& table) {
    if (table.ndim() != 2 || table.shape(1) != 4)
        throw std::invalid_argument("entropy coder: a pass table of (nz, ny, nx, level) rows");
    std::vector<Row> rows;
    const int64_t* t = table.data();
    for (py::ssize_t i = 0; i < table.shape(0); ++i) {
        const Row r{t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]};
        if (r.nz < 0 || r.ny < 0 || r.nx < 0 || r.level < 0)
            throw std::invalid_argument("entropy coder: negative entry in the pass table");
        rows.push_back(r);
    }
    return rows;
}

inline int64_t count_of(const std::vector<Row>& rows) {
    int64_t n = 0;
    for (const Row& r : rows) n += r.nz * r.ny * r.nx;
    return n;
}

// The rows of a pass table that covers n codes, checked.
inline std::vector<Row> rows_of(const py::array_t<int64_t, py::array::c_style>& table, int64_t n) {
    auto rows = rows_in(table);
    const int64_t total = count_of(rows);
    if (total != n)
        throw std::invalid_argument("entropy coder: the pass table covers " + std::to_string(total) + " codes, not " +
                                    std::to_string(n));
    return rows;
}

// min(|k|, 3), with no overflow at the extremes (in k's own width: a row of int32 codes vectorises)
template <class K>
inline int small(K k) {
    const auto u = magnitude(k);
    return u < 3 ? static_cast<int>(u) : 3;
}

// near[x] += small(k[x]) for x < n: a whole row in one loop, before the row's chain of dependent bits (measured:
// computed per code inside that chain, it was a sixth of a dense block's decoding instructions)
template <class K>
inline void add_small(uint8_t* near, const K* k, int64_t n) {
    for (int64_t x = 0; x < n; ++x) near[x] = static_cast<uint8_t>(near[x] + small(k[x]));
}

// The pass rows of each table of a split stream (inr/entropy.py encode_parts), checked.
inline std::vector<std::vector<Row>> parts_of(const py::list& tables) {
    std::vector<std::vector<Row>> parts;
    for (const auto& t : tables) parts.push_back(rows_in(t.cast<py::array_t<int64_t, py::array::c_style>>()));
    return parts;
}

// -log2(q / 2^16) in 1/COST_UNITS bits for a coded bit of probability q (16-bit, as the coder takes it), by
// q >> 4 (the middle of each of 4096 steps; inr/entropy.py _LOG_COST builds the same table).
constexpr int COST_UNITS = 256;
inline const std::array<uint32_t, 4097> LOG_COST = [] {
    std::array<uint32_t, 4097> t{};
    for (int i = 0; i <= 4096; ++i)
        t[i] = static_cast<uint32_t>(
            std::floor(-std::log2((std::max(i, 1) * 16.0 + 8.0) / 65536.0) * COST_UNITS + 0.5));
    return t;
}();

}  // namespace coding
}  // namespace inr
