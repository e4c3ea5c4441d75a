// Context-adaptive binary range coding of the residual coder's codes: the same bits, contexts and
// probability updates as inr/entropy.py (the reference, which documents the format), so either side
// decodes what the other encoded.
#include "entropy.h"
#include "entropy_common.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace py = pybind11;

namespace inr {
namespace {

using namespace coding;

constexpr int UNARY = 14, MAX_SHIFT = 7, LEVELS = 12, NEIGHBOURHOODS = 10, EXPONENTS = 40, MANTISSAS = 64,
              FLUSH_ZEROS = 4;
constexpr int64_t SPLIT_CODES = int64_t{1} << 20;
constexpr int ROW = 0, ZERO = ROW + LEVELS * 3, SIGN = ZERO + LEVELS * NEIGHBOURHOODS, MAG = SIGN + 3,
              EXP = MAG + 3 * NEIGHBOURHOODS * UNARY, MANT = EXP + EXPONENTS,
              N_CONTEXTS = MANT + MANTISSAS;
constexpr uint32_t ONE = 1u << 31, TOP = 1u << 24;

// The adaptation shift after `seen` bits: min(MAX_SHIFT, bit length of seen + 1), MAX_SHIFT from 63 on.
constexpr std::array<uint8_t, 64> SHIFT = [] {
    std::array<uint8_t, 64> t{};
    for (int seen = 0; seen < 64; ++seen) {
        int len = 0;
        for (int c = seen + 1; c; c >>= 1) ++len;
        t[seen] = static_cast<uint8_t>(len < MAX_SHIFT ? len : MAX_SHIFT);
    }
    return t;
}();

struct Model {
    uint32_t p[N_CONTEXTS];  // P(bit = 0), 31 bits
    uint8_t n[N_CONTEXTS];   // bits seen, saturating at 63: the shift depends on it only up to there
    Model() {
        std::fill(p, p + N_CONTEXTS, ONE >> 1);
        std::fill(n, n + N_CONTEXTS, 0);
    }
    uint32_t p16(int ctx) const { return std::max<uint32_t>(p[ctx] >> 15, 1); }  // p < 2^31: at most 0xFFFF
    void update(int ctx, int bit) {
        // shift = min(MAX_SHIFT, bit length of count + 1): 7 from 63 bits seen on
        const int s = SHIFT[n[ctx]];
        const uint32_t down = p[ctx] - (p[ctx] >> s), up = p[ctx] + ((ONE - p[ctx]) >> s);
        p[ctx] = bit ? down : up;
        n[ctx] = static_cast<uint8_t>(n[ctx] + (n[ctx] < 63));
    }
};

class Encoder {
public:
    void bit(uint32_t p0, int b) {
        const uint32_t bound = (range_ >> 16) * p0;
        if (b) {
            low_ += bound;
            range_ -= bound;
        } else {
            range_ = bound;
        }
        while (range_ < TOP) {
            range_ <<= 8;
            shift_low();
        }
    }
    std::string finish() {
        for (int i = 0; i < 5; ++i) shift_low();
        for (int i = 0; i < FLUSH_ZEROS && !out_.empty() && out_.back() == '\0'; ++i) out_.pop_back();
        return std::move(out_);
    }

private:
    void shift_low() {
        if (low_ < 0xFF000000ull || low_ >= (1ull << 32)) {
            const auto carry = static_cast<uint8_t>(low_ >> 32);
            uint8_t temp = cache_;
            do {
                if (first_) first_ = false;  // LZMA's first byte: always 0, not stored
                else out_.push_back(static_cast<char>(static_cast<uint8_t>(temp + carry)));
                temp = 0xFF;
            } while (--pending_ != 0);
            cache_ = static_cast<uint8_t>(low_ >> 24);
        }
        ++pending_;
        low_ = (low_ & 0x00FFFFFFull) << 8;
    }
    uint64_t low_ = 0;
    uint32_t range_ = 0xFFFFFFFFu;
    uint8_t cache_ = 0;
    uint64_t pending_ = 1;
    bool first_ = true;
    std::string out_;
};

class Decoder {
public:
    explicit Decoder(std::string_view data) : data_(data) {
        for (int i = 0; i < 4; ++i) code_ = (code_ << 8) | next();
    }
    int bit(uint32_t p0) {
        const uint32_t bound = (range_ >> 16) * p0;
        const int b = code_ >= bound;  // without a branch: the bits of a busy stretch are not predictable
        const uint32_t take = b ? bound : 0u;
        range_ = b ? range_ - bound : bound;
        code_ -= take;
        if (range_ < TOP) {  // at most twice: range >= 2^8 after a bit (p0 >= 1, range >> 16 >= 2^8)
            range_ <<= 8;
            code_ = (code_ << 8) | next();
            if (range_ < TOP) {
                range_ <<= 8;
                code_ = (code_ << 8) | next();
            }
        }
        return b;
    }

    size_t read() const { return at_; }

private:
    uint32_t next() { return at_ < data_.size() ? static_cast<uint8_t>(data_[at_++]) : (++at_, 0u); }
    std::string_view data_;
    size_t at_ = 0;
    uint32_t range_ = 0xFFFFFFFFu, code_ = 0;
};

// The passes row by row, as in inr/entropy.py _walk: row_flag(start, nx, ctx) codes or decodes whether the row
// holds a nonzero code; only then code_one(i, ctx_zero, ctx_sign, mag_base) for each of its codes (the contexts
// from the codes before it: coded or decoded by then).
template <class R, class F>
void walk(const std::vector<Row>& rows, const int64_t* codes, R&& row_flag, F&& code_one) {
    int64_t pos = 0;
    std::vector<uint8_t> busy;
    for (const Row& r : rows) {
        const int lv = static_cast<int>(std::min<int64_t>(std::max<int64_t>(r.level, 1), LEVELS) - 1);
        const int zbase = ZERO + lv * NEIGHBOURHOODS, rbase = ROW + lv * 3;
        const int mbase = MAG + (r.level <= 1 ? 0 : r.level == 2 ? 1 : 2) * NEIGHBOURHOODS * UNARY;
        const int64_t plane = r.ny * r.nx;
        busy.assign(2 * static_cast<size_t>(r.ny), 0);  // whether each row of the previous and this z had a nonzero
        for (int64_t z = 0; z < r.nz; ++z) {
            uint8_t* cur = busy.data() + (z % 2) * r.ny;
            const uint8_t* prev = busy.data() + ((z + 1) % 2) * r.ny;
            for (int64_t y = 0; y < r.ny; ++y) {
                const int64_t row = pos + (z * r.ny + y) * r.nx;
                cur[y] = row_flag(row, r.nx, rbase + (y > 0 && cur[y - 1]) + (z > 0 && prev[y])) ? 1 : 0;
                if (!cur[y]) continue;
                for (int64_t x = 0; x < r.nx; ++x) {
                    const int64_t i = row + x;
                    const int64_t a = x ? codes[i - 1] : 0;
                    const int m = small(a) + (y ? small(codes[i - r.nx]) : 0) + (z ? small(codes[i - plane]) : 0);
                    code_one(i, zbase + m, SIGN + (a == 0 ? 0 : a > 0 ? 1 : 2), mbase + m * UNARY);
                }
            }
        }
        pos += r.nz * plane;
    }
}

// The bits of the codes of rows (from codes, their first), each handed to put(ctx, bit) with its context in
// coding order: what a segment codes (encode_segment) and what a trial is costed by (estimate).
template <class Put>
void binarize(const std::vector<Row>& rows, const int64_t* codes, Put&& put) {
    auto row_flag = [&](int64_t start, int64_t nx, int ctx) {
        const bool any = std::any_of(codes + start, codes + start + nx, [](int64_t k) { return k != 0; });
        put(ctx, any);
        return any;
    };
    walk(rows, codes, row_flag, [&](int64_t i, int cz, int cs, int mb) {
        const int64_t k = codes[i];
        put(cz, k != 0);
        if (!k) return;
        put(cs, k < 0);
        const uint64_t mag = static_cast<uint64_t>(k < 0 ? -(k + 1) : k - 1);  // |k| - 1 without overflow
        for (int j = 0; j < UNARY; ++j) {
            put(mb + j, mag > static_cast<uint64_t>(j));
            if (mag <= static_cast<uint64_t>(j)) return;
        }
        const uint64_t v = mag - UNARY + 1;
        const int e = 63 - __builtin_clzll(v);
        for (int j = 0; j < e; ++j) put(EXP + std::min(j, EXPONENTS - 1), 1);
        put(EXP + std::min(e, EXPONENTS - 1), 0);
        for (int j = e - 1; j >= 0; --j) put(MANT + std::min(j, MANTISSAS - 1), static_cast<int>((v >> j) & 1));
    });
}

// One segment's bytes: the codes of rows[0, nrows) from codes (their first), with contexts of their own.
std::string encode_segment(const std::vector<Row>& rows, const int64_t* codes) {
    Model model;
    Encoder enc;
    binarize(rows, codes, [&](int ctx, int b) {
        enc.bit(model.p16(ctx), b);
        model.update(ctx, b);
    });
    return enc.finish();
}

// About the bytes encode_segment writes for rows: each bit's cost under the same adaptive probabilities, summed
// (the coder's own arithmetic and output left out: a third of its time on dense codes, measured).
int64_t estimate(const std::vector<Row>& rows, const int64_t* codes) {
    Model model;
    uint64_t units = 0;
    binarize(rows, codes, [&](int ctx, int b) {
        const uint32_t p0 = model.p16(ctx);
        units += LOG_COST[(b ? 65536u - p0 : p0) >> 4];
        model.update(ctx, b);
    });
    return static_cast<int64_t>((units + 8 * COST_UNITS - 1) / (8 * COST_UNITS));
}

// Decodes one segment into codes (every one written); an empty string when it is well formed, else why not (WIDE
// for a code that K cannot hold). The walk of walk() written out by hand: decoding is one chain of dependent bits,
// so the previous code's context part stays in a register and the y and z neighbours' part of each busy row is
// summed before the row is decoded.
template <class K>
std::string decode_segment(std::string_view data, const std::vector<Row>& rows, K* codes) {
    Model model;
    Decoder dec(data);
    auto get = [&](int ctx) {
        const int b = dec.bit(model.p16(ctx));
        model.update(ctx, b);
        return b;
    };
    int64_t pos = 0;
    std::vector<uint8_t> busy, near;
    for (const Row& r : rows) {
        const int lv = static_cast<int>(std::min<int64_t>(std::max<int64_t>(r.level, 1), LEVELS) - 1);
        const int zbase = ZERO + lv * NEIGHBOURHOODS, rbase = ROW + lv * 3;
        const int mbase = MAG + (r.level <= 1 ? 0 : r.level == 2 ? 1 : 2) * NEIGHBOURHOODS * UNARY;
        const int64_t plane = r.ny * r.nx;
        busy.assign(2 * static_cast<size_t>(r.ny), 0);
        near.resize(static_cast<size_t>(r.nx));
        for (int64_t z = 0; z < r.nz; ++z) {
            uint8_t* cur = busy.data() + (z % 2) * r.ny;
            const uint8_t* prev = busy.data() + ((z + 1) % 2) * r.ny;
            for (int64_t y = 0; y < r.ny; ++y) {
                const int64_t row = pos + (z * r.ny + y) * r.nx;
                cur[y] = static_cast<uint8_t>(get(rbase + (y > 0 && cur[y - 1]) + (z > 0 && prev[y])));
                K* out = codes + row;
                std::fill(out, out + r.nx, 0);  // here, not before the threads start: each zeroes its own rows
                if (!cur[y]) continue;
                std::fill(near.begin(), near.begin() + r.nx, 0);  // the y and z neighbours' part of each context
                if (y) add_small(near.data(), out - r.nx, r.nx);
                if (z) add_small(near.data(), out - plane, r.nx);
                int sa = 0, sign_ctx = SIGN;  // from the code before along x: min(|a|, 3), and a's sign
                for (int64_t x = 0; x < r.nx; ++x) {
                    const int m = sa + near[x];
                    if (!get(zbase + m)) {
                        sa = 0;
                        sign_ctx = SIGN;
                        continue;
                    }
                    const int negative = get(sign_ctx);
                    const int mb = mbase + m * UNARY;
                    uint64_t mag = 0;
                    while (mag < static_cast<uint64_t>(UNARY) && get(mb + static_cast<int>(mag))) ++mag;
                    if (mag == static_cast<uint64_t>(UNARY)) {
                        int e = 0;
                        while (get(EXP + std::min(e, EXPONENTS - 1)))
                            if (++e > 62) return "residual codes malformed: a code runs past 64 bits";
                        uint64_t v = 1;
                        for (int j = e - 1; j >= 0; --j)
                            v = (v << 1) | static_cast<uint64_t>(get(MANT + std::min(j, MANTISSAS - 1)));
                        mag = UNARY + v - 1;
                    }
                    if constexpr (sizeof(K) < sizeof(int64_t))  // |code| = mag + 1 past K: decode into int64
                        if (mag >= static_cast<uint64_t>(std::numeric_limits<K>::max())) return WIDE;
                    const auto m1 = static_cast<int64_t>(mag + 1);
                    out[x] = static_cast<K>(negative ? -m1 : m1);
                    sa = mag >= 2 ? 3 : static_cast<int>(mag) + 1;
                    sign_ctx = SIGN + 1 + negative;
                }
            }
        }
        pos += r.nz * plane;
    }
    const size_t read = dec.read();
    if (read < data.size() || read > data.size() + FLUSH_ZEROS)
        return "residual codes malformed: the passes read " + std::to_string(read) + " bytes of a stream of " +
               std::to_string(data.size());
    return "";
}

// The segments of a stream (inr/entropy.py _segments): one, or, from SPLIT_CODES codes on, the passes before
// the last and the last (about half of the codes each), coded independently so that two threads decode them.
std::vector<std::vector<Row>> segments_of(const std::vector<Row>& rows) {
    if (rows.size() < 2 || count_of(rows) < SPLIT_CODES) return {rows};
    return {std::vector<Row>(rows.begin(), rows.end() - 1), std::vector<Row>(rows.end() - 1, rows.end())};
}

// Each segment's codes (from codes + first[i]; by default the segments in order) coded on its own, on up to
// `threads` threads.
std::vector<std::string> encode_segments(const std::vector<std::vector<Row>>& segs, const int64_t* codes,
                                         int threads, std::vector<int64_t> first = {}) {
    if (first.empty()) first = firsts_of(segs);
    std::vector<std::string> out(segs.size());
#pragma omp parallel for num_threads(std::max(threads, 1)) schedule(dynamic, 1) if (segs.size() > 1 && threads > 1)
    for (int i = 0; i < static_cast<int>(segs.size()); ++i) out[i] = encode_segment(segs[i], codes + first[i]);
    return out;
}

// The n codes of the segments whose bytes are parts (int32, or int64 where one does not fit), on up to `threads`
// threads; throws std::invalid_argument saying why when a part is not its segment's stream.
py::array codes_of(const std::vector<std::string_view>& parts, const std::vector<std::vector<Row>>& segs, int64_t n,
                   int threads) {
    return int32_or_int64(n, [&](auto* codes) {
        return decode_segments(segs, codes, threads,
                               [&](int i, auto* c) { return decode_segment(parts[i], segs[i], c); });
    });
}

// The stream of the codes of rows: its segments, the first's size before them when there are two.
std::string encode_rows(const std::vector<Row>& rows, const int64_t* codes, int threads) {
    const auto parts = encode_segments(segments_of(rows), codes, threads);
    std::string out;
    if (parts.size() > 1) put_varint(out, parts[0].size());  // the first segment's size
    for (const auto& part : parts) out += part;
    return out;
}

py::bytes encode(py::array_t<int64_t, py::array::c_style> codes_arr, py::array_t<int64_t, py::array::c_style> table,
                 int threads) {
    const auto rows = rows_of(table, codes_arr.size());
    std::string out;
    {
        py::gil_scoped_release release;
        out = encode_rows(rows, codes_arr.data(), threads);
    }
    return py::bytes(out);
}

py::array decode(py::bytes data_obj, py::array_t<int64_t, py::array::c_style> table, int64_t n, int threads) {
    const std::string_view data(data_obj);
    const auto segs = segments_of(rows_of(table, n));
    std::vector<std::string_view> parts{data};
    if (segs.size() > 1) {
        size_t at = 0;
        const auto size = take_varint(data, at);
        if (!size) throw std::invalid_argument("residual codes malformed: segment size");
        const uint64_t len = *size;
        if (len > data.size() - at) throw std::invalid_argument("residual codes malformed: segment past the end");
        parts = {data.substr(at, len), data.substr(at + len)};
    }
    return codes_of(parts, segs, n, threads);
}

// The segments of a split stream (inr/entropy.py encode_parts): each table's codes, in order, coded as one
// segment each, on up to `threads` threads. With `firsts` (one per table), table i's codes start at codes[firsts[i]]
// instead: segments of two streams of the same codes, coded at once.
py::list encode_parts(py::array_t<int64_t, py::array::c_style> codes_arr, py::list tables, int threads,
                      std::optional<py::array_t<int64_t, py::array::c_style>> firsts) {
    const auto parts = parts_of(tables);
    std::vector<int64_t> first;
    if (firsts) {
        first = firsts_given(parts, *firsts, codes_arr.size(), "entropy coder");
    } else if (firsts_of(parts).back() != codes_arr.size()) {
        throw std::invalid_argument("entropy coder: the parts do not cover the codes");
    }
    std::vector<std::string> out;
    {
        py::gil_scoped_release release;
        out = encode_segments(parts, codes_arr.data(), threads, first);
    }
    py::list result;
    for (const auto& o : out) result.append(py::bytes(o));
    return result;
}

// The n codes of a split stream's segments: segment i is data[bounds[i]:bounds[i + 1]], coding the passes of
// tables[i]; up to `threads` threads decode them at once.
py::array decode_parts(py::bytes data_obj, py::list tables, py::array_t<int64_t, py::array::c_style> bounds, int64_t n,
                       int threads) {
    const std::string_view data(data_obj);
    const auto segs = parts_of(tables);
    const auto k = static_cast<py::ssize_t>(segs.size());
    if (bounds.size() != k + 1) throw std::invalid_argument("residual codes malformed: segment bounds");
    if (firsts_of(segs).back() != n) throw std::invalid_argument("entropy coder: the parts do not cover the codes");
    const int64_t* b = bounds.data();
    std::vector<std::string_view> parts;
    for (py::ssize_t i = 0; i < k; ++i) {
        if (b[i] < 0 || b[i] > b[i + 1] || b[i + 1] > static_cast<int64_t>(data.size()))
            throw std::invalid_argument("residual codes malformed: segment past the end");
        parts.push_back(data.substr(b[i], b[i + 1] - b[i]));
    }
    return codes_of(parts, segs, n, threads);
}

// inr/entropy.py estimate_bytes: about the bytes of the codes of the passes in table as one segment.
int64_t estimate_bytes(py::array_t<int64_t, py::array::c_style> codes_arr,
                       py::array_t<int64_t, py::array::c_style> table) {
    const auto rows = rows_of(table, codes_arr.size());
    py::gil_scoped_release release;
    return estimate(rows, codes_arr.data());
}

// inr/entropy.py _plane_costs: each z-plane's (every pass's, in order) binary decisions, about.
py::array_t<int64_t> plane_costs(py::array_t<int64_t, py::array::c_style> codes_arr,
                                 py::array_t<int64_t, py::array::c_style> table) {
    const auto rows = rows_of(table, codes_arr.size());
    int64_t planes = 0;
    for (const Row& r : rows) planes += r.nz;
    py::array_t<int64_t> out(static_cast<py::ssize_t>(planes));
    int64_t* cost = out.mutable_data();
    const int64_t* k = codes_arr.data();
    py::gil_scoped_release release;
    for (const Row& r : rows) {
        for (int64_t z = 0; z < r.nz; ++z, ++cost) {
            int64_t c = r.ny;
            for (int64_t y = 0; y < r.ny; ++y, k += r.nx) {
                bool busy = false;
                for (int64_t x = 0; x < r.nx; ++x) {
                    const uint64_t mag = magnitude(k[x]);
                    if (!mag) continue;
                    busy = true;
                    c += 2 + static_cast<int64_t>(std::min<uint64_t>(mag - 1, UNARY));
                    if (mag > static_cast<uint64_t>(UNARY)) c += 2 * (63 - __builtin_clzll(mag - UNARY)) + 1;
                }
                if (busy) c += r.nx;
            }
            *cost = c;
        }
    }
    return out;
}

}  // namespace

int64_t entropy_cost(const int64_t* codes, int64_t nz, int64_t ny, int64_t nx, int64_t level) {
    return estimate({Row{nz, ny, nx, level}}, codes);
}

void register_entropy(py::module_& m) {
    m.def("entropy_encode", &encode, py::arg("codes"), py::arg("table"), py::arg("threads") = 1,
          "Range-code the residual codes of the passes in table ((nz, ny, nx, level) rows).");
    m.def("entropy_encode_parts", &encode_parts, py::arg("codes"), py::arg("tables"), py::arg("threads") = 1,
          py::arg("firsts") = py::none(),
          "The segments of a split stream: the codes of each table's passes, in order, coded as one segment each.");
    m.def("entropy_decode_parts", &decode_parts, py::arg("data"), py::arg("tables"), py::arg("bounds"), py::arg("n"),
          py::arg("threads") = 1,
          "The n codes (int32, or int64 where one does not fit) of a split stream's segments "
          "data[bounds[i]:bounds[i + 1]].");
    m.def("entropy_estimate", &estimate_bytes, py::arg("codes"), py::arg("table"),
          "About the bytes of the codes of the passes in table as one segment (inr/entropy.py estimate_bytes).");
    m.def("entropy_plane_costs", &plane_costs, py::arg("codes"), py::arg("table"),
          "Each z-plane's binary decisions, about (inr/entropy.py _plane_costs).");
    m.def("entropy_decode", &decode, py::arg("data"), py::arg("table"), py::arg("n"), py::arg("threads") = 1,
          "The n residual codes (int32, or int64 where one does not fit) range-coded in data for the passes in table.");
}

}  // namespace inr
