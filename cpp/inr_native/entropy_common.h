// What both coders of the residual codes share (entropy.cpp: adaptive binary range coding; table_coder.cpp: static
// tables and rANS): the pass tables they walk, the neighbour sizes their contexts are built from, and the cost
// of a coded bit.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
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

// Where each segment's codes start (one more: the codes in all).
inline std::vector<int64_t> firsts_of(const std::vector<std::vector<Row>>& segs) {
    std::vector<int64_t> first{0};
    for (const auto& s : segs) first.push_back(first.back() + count_of(s));
    return first;
}

// The first code of each of the segments `parts` (the passes of one table each) among n codes, given as `firsts`,
// checked (`who`: which coder says it, in the error).
inline std::vector<int64_t> firsts_given(const std::vector<std::vector<Row>>& parts,
                                         const py::array_t<int64_t, py::array::c_style>& firsts, int64_t n,
                                         const std::string& who) {
    if (firsts.size() != static_cast<py::ssize_t>(parts.size()))
        throw std::invalid_argument(who + ": one first code per table");
    std::vector<int64_t> first;
    for (size_t i = 0; i < parts.size(); ++i) {
        const int64_t f = firsts.data()[i];
        if (f < 0 || f + count_of(parts[i]) > n)
            throw std::invalid_argument(who + ": a table's codes run past the codes");
        first.push_back(f);
    }
    return first;
}

// v in 7-bit groups, low first, appended to out (inr/packing.py varint).
inline void put_varint(std::string& out, uint64_t v) {
    for (;; v >>= 7) {
        out.push_back(static_cast<char>((v & 0x7F) | (v > 0x7F ? 0x80 : 0)));
        if (v <= 0x7F) break;
    }
}

// The varint at data[at] (at moved past it), or nothing when it runs past the end or past 64 bits.
inline std::optional<uint64_t> take_varint(std::string_view data, size_t& at) {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        if (at >= data.size() || shift > 63) return std::nullopt;
        const auto b = static_cast<uint8_t>(data[at++]);
        v |= static_cast<uint64_t>(b & 0x7F) << shift;
        if (!(b & 0x80)) return v;
    }
}

// What a segment's decoder answers for a code that its K cannot hold: the caller decodes again into int64.
constexpr const char* WIDE = "wide";

// Each segment's codes into codes + firsts_of(segs)[i] by decode_one(i, codes of segment i), "" when well formed,
// else why not (WIDE: a code past K), on up to `threads` threads. Throws std::invalid_argument saying why when a
// segment is malformed; false (nothing thrown) when a code does not fit K.
template <class K, class DecodeOne>
bool decode_segments(const std::vector<std::vector<Row>>& segs, K* codes, int threads, DecodeOne&& decode_one) {
    const auto first = firsts_of(segs);
    std::vector<std::string> errors(segs.size());
#pragma omp parallel for num_threads(std::max(threads, 1)) schedule(dynamic, 1) if (segs.size() > 1 && threads > 1)
    for (int i = 0; i < static_cast<int>(segs.size()); ++i) errors[i] = decode_one(i, codes + first[i]);
    for (const auto& e : errors)
        if (!e.empty() && e != WIDE) throw std::invalid_argument(e);
    return std::none_of(errors.begin(), errors.end(), [](const std::string& e) { return e == WIDE; });
}

// The n codes that decode(K* codes) writes (true: every one fitted K), as int32, or int64 where one does not fit:
// half the memory to write and for the residual passes to read, nearly always. The GIL is released meanwhile.
template <class Decode>
py::array int32_or_int64(int64_t n, Decode&& decode) {
    py::array_t<int32_t> narrow(static_cast<py::ssize_t>(n));
    bool fits;
    {
        py::gil_scoped_release release;
        fits = decode(narrow.mutable_data());
    }
    if (fits) return std::move(narrow);
    py::array_t<int64_t> wide(static_cast<py::ssize_t>(n));
    {
        py::gil_scoped_release release;
        decode(wide.mutable_data());
    }
    return std::move(wide);
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
