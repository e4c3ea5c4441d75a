// Table coding of the residual codes: static per-context frequency tables and two interleaved rANS states, the
// same bytes as inr/table_coding.py (the reference, which documents the format). It decodes about twice as fast
// as the adaptive binary coder of entropy.cpp: one table lookup per code and no branch on what was decoded.
#include "table_coder.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "entropy_common.h"

namespace py = pybind11;

namespace inr {
namespace {

using namespace coding;

// The model (inr/table_coding.py has the same constants): a code's context is its pass's level class, the size
// of its neighbours before it along y and z (min(|b|, 3) + min(|c|, 3), at most NEAR) and along x (min(|a|, 3)).
constexpr int ALPHABET = 16, ESCAPE = 15, DIRECT = 7, NEAR = 3, CLASSES = 3;
constexpr int CODE_CONTEXTS = CLASSES * (NEAR + 1) * 4, ROW_CONTEXTS = CLASSES * 3,
              N_CONTEXTS = CODE_CONTEXTS + ROW_CONTEXTS;
constexpr int PROB_BITS = 10, MIN_PRECISION = 3, LENGTH_BITS = 5, PRECISION_BITS = 3;
constexpr uint32_t SCALE = 1u << PROB_BITS, LOW = 1u << 16;

inline int level_class(int64_t level) { return level <= 1 ? 0 : level == 2 ? 1 : 2; }
// the context of a code: level class, near = min(|b|, 3) + min(|c|, 3) (capped at NEAR), min(|a|, 3)
inline int code_context(int cls, int near, int small_a) {
    return (cls * (NEAR + 1) + std::min(near, NEAR)) * 4 + small_a;
}
inline int row_context(int cls, int busy_before) { return CODE_CONTEXTS + cls * 3 + busy_before; }

// Bits, most significant first, packed into bytes (the last padded with zeros).
class BitWriter {
public:
    void put(uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i) {
            acc_ = static_cast<uint8_t>((acc_ << 1) | ((v >> i) & 1));
            if (++filled_ == 8) {
                out_.push_back(static_cast<char>(acc_));
                acc_ = 0;
                filled_ = 0;
            }
        }
    }
    void gamma(uint64_t v) {  // v >= 1: its bit length less one in zeros, then v
        const int len = 64 - __builtin_clzll(v);
        put(0, len - 1);
        put(v, len);
    }
    std::string finish() {
        if (filled_) out_.push_back(static_cast<char>(acc_ << (8 - filled_)));
        acc_ = 0;
        filled_ = 0;
        return std::move(out_);
    }

private:
    std::string out_;
    uint8_t acc_ = 0;
    int filled_ = 0;
};

// Reads what BitWriter wrote; past the end it reads zeros and remembers it did.
class BitReader {
public:
    explicit BitReader(std::string_view data) : data_(data) {}
    int bit() {
        const size_t byte = at_ >> 3;
        const int b = byte < data_.size() ? (static_cast<uint8_t>(data_[byte]) >> (7 - (at_ & 7))) & 1 : 0;
        ++at_;
        return b;
    }
    uint64_t bits(int n) {
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v = (v << 1) | static_cast<uint64_t>(bit());
        return v;
    }
    // A gamma code's value, or 0 when it runs past 63 bits (malformed).
    uint64_t gamma() {
        int zeros = 0;
        while (!bit())
            if (++zeros > 62 || past()) return 0;
        return (uint64_t{1} << zeros) | bits(zeros);
    }
    bool past() const { return at_ > 8 * data_.size(); }
    size_t bytes_read() const { return (at_ + 7) >> 3; }

private:
    std::string_view data_;
    size_t at_ = 0;
};

// Every context's table: the frequencies of its symbols (summing to SCALE, or all zero: unused) and where each
// symbol's slots start.
struct Tables {
    uint16_t freq[N_CONTEXTS][ALPHABET] = {};
    uint16_t start[N_CONTEXTS][ALPHABET] = {};
    bool used[N_CONTEXTS] = {};
    void finish() {
        for (int c = 0; c < N_CONTEXTS; ++c) {
            uint32_t at = 0;
            for (int s = 0; s < ALPHABET; ++s) {
                start[c][s] = static_cast<uint16_t>(at);
                at += freq[c][s];
            }
            used[c] = at == SCALE;
        }
    }
};

// Bits of a gamma code of v >= 1.
inline int64_t gamma_bits(uint64_t v) { return 2 * (63 - __builtin_clzll(v)) + 1; }

// The frequencies at precision p (summing to 2^p, every seen symbol at least 1) of histogram h (n symbols): each
// rounded from its share, then the largest (the first of equals) takes up the difference, down to 1 at least.
std::vector<uint64_t> quantize(const uint64_t* h, int n, int p) {
    uint64_t total = 0;
    for (int s = 0; s < n; ++s) total += h[s];
    const uint64_t target = uint64_t{1} << p;
    std::vector<uint64_t> q(n, 0);
    uint64_t sum = 0;
    for (int s = 0; s < n; ++s) {
        if (h[s]) q[s] = std::max<uint64_t>(1, (h[s] * target + total / 2) / total);
        sum += q[s];
    }
    while (sum != target) {
        const int big = static_cast<int>(std::max_element(q.begin(), q.end()) - q.begin());
        if (sum < target) {
            q[big] += target - sum;
            sum = target;
        } else {
            const uint64_t take = std::min(sum - target, q[big] - 1);
            q[big] -= take;
            sum -= take;
        }
    }
    return q;
}

// The table of one context from its histogram, written to w: LENGTH_BITS of n (the symbols up to the last one
// seen); from two on, the precision p less MIN_PRECISION, then symbols 1..n-1's frequencies at p as gamma codes of
// frequency + 1 (symbol 0's is what they leave of 2^p). The precision is the one of least bits, table and codes.
void write_table(const uint64_t* h, BitWriter& w, uint16_t* freq) {
    int n = ALPHABET;
    while (n > 0 && !h[n - 1]) --n;
    w.put(static_cast<uint64_t>(n), LENGTH_BITS);
    if (n == 0) return;
    if (n == 1) {
        freq[0] = static_cast<uint16_t>(SCALE);
        return;
    }
    int seen = 0;
    for (int s = 0; s < n; ++s) seen += h[s] != 0;
    int best_p = -1;
    uint64_t best_cost = 0;
    std::vector<uint64_t> best_q;
    for (int p = MIN_PRECISION; p <= PROB_BITS; ++p) {
        if ((1 << p) < seen) continue;
        const auto q = quantize(h, n, p);
        uint64_t cost = static_cast<uint64_t>(PRECISION_BITS) * COST_UNITS;
        for (int s = 0; s < n; ++s) {
            if (s) cost += static_cast<uint64_t>(gamma_bits(q[s] + 1)) * COST_UNITS;
            if (h[s]) cost += h[s] * LOG_COST[q[s] << (12 - p)];
        }
        if (best_p < 0 || cost < best_cost) {
            best_p = p;
            best_cost = cost;
            best_q = q;
        }
    }
    w.put(static_cast<uint64_t>(best_p - MIN_PRECISION), PRECISION_BITS);
    for (int s = 1; s < n; ++s) w.gamma(best_q[s] + 1);
    for (int s = 0; s < n; ++s) freq[s] = static_cast<uint16_t>(best_q[s] << (PROB_BITS - best_p));
}

// The tables written by write_table, from data at `at` (moved past them, whole bytes); throws when malformed.
Tables read_tables(std::string_view data, size_t& at) {
    BitReader r(data.substr(at));
    Tables t;
    for (int c = 0; c < N_CONTEXTS; ++c) {
        const int n = static_cast<int>(r.bits(LENGTH_BITS));
        if (n > (c < CODE_CONTEXTS ? ALPHABET : 2))
            throw std::invalid_argument("residual codes malformed: a table of " + std::to_string(n) + " symbols");
        if (n == 1) t.freq[c][0] = static_cast<uint16_t>(SCALE);
        if (n < 2) continue;
        const int p = MIN_PRECISION + static_cast<int>(r.bits(PRECISION_BITS));
        uint64_t sum = 0;
        for (int s = 1; s < n; ++s) {
            const uint64_t q = r.gamma() - 1;  // a malformed gamma gives 0 - 1: past any precision
            if (q > (uint64_t{1} << p)) throw std::invalid_argument("residual codes malformed: a table frequency");
            sum += q;
            t.freq[c][s] = static_cast<uint16_t>(q << (PROB_BITS - p));
        }
        if (sum > (uint64_t{1} << p)) throw std::invalid_argument("residual codes malformed: a table's frequencies");
        t.freq[c][0] = static_cast<uint16_t>(((uint64_t{1} << p) - sum) << (PROB_BITS - p));
    }
    if (r.past()) throw std::invalid_argument("residual codes malformed: tables past the end");
    at += r.bytes_read();
    t.finish();
    return t;
}

// Counts the bits a BitWriter would be given (what estimate() needs of the escapes).
struct BitCount {
    uint64_t n = 0;
    void put(uint64_t, int k) { n += static_cast<uint64_t>(k); }
    void gamma(uint64_t v) { n += static_cast<uint64_t>(gamma_bits(v)); }
};

// A code's symbol given the code a before it along x (its sign mirrors the code's) and, for an escape, its bits.
template <class K, class Bits>
inline int symbol_of(K k, K a, Bits& esc) {
    const uint64_t mag = magnitude(k);
    const int neg = (k < 0) != (a < 0);
    if (mag <= static_cast<uint64_t>(DIRECT))  // 0 for 0 with no branch: zeros and ones are not predictable
        return static_cast<int>(2 * mag) - (mag != 0) + (neg & (mag != 0));
    esc.gamma(mag - DIRECT);
    esc.put(static_cast<uint64_t>(neg), 1);
    return ESCAPE;
}

// Each symbol of the codes of rows (from codes, their first) in coding order, as put(context, symbol, lane)
// (lane: x % 4 for a code, 0 for a row: a histogram kept in four copies by lane has no chain of increments of one
// count), and the escapes' bits to esc: the walk of inr/table_coding.py _walk, each busy row's y and z neighbours
// summed first, as the decoder does. every > 1: only every every-th row (counted over all passes) and its codes
// are put (the others are looked at for whether they are busy, which the contexts of the rows after them need):
// a sample.
template <class Bits, class Put>
void symbols(const std::vector<Row>& rows, const int64_t* codes, Bits& esc, Put&& put, int64_t every = 1) {
    int64_t pos = 0, counted = 0;
    std::vector<uint8_t> busy, near;
    for (const Row& r : rows) {
        const int cls = level_class(r.level);
        const int64_t nx = r.nx, ny = r.ny, plane = ny * nx;
        busy.assign(2 * static_cast<size_t>(ny), 0);
        near.resize(static_cast<size_t>(nx));
        for (int64_t z = 0; z < r.nz; ++z) {
            uint8_t* cur = busy.data() + (z % 2) * ny;
            const uint8_t* prev = busy.data() + ((z + 1) % 2) * ny;
            for (int64_t y = 0; y < ny; ++y) {
                const int64_t* row = codes + pos + (z * ny + y) * nx;
                cur[y] = std::any_of(row, row + nx, [](int64_t k) { return k != 0; }) ? 1 : 0;
                if (counted++ % every) continue;
                put(row_context(cls, (y > 0 && cur[y - 1]) + (z > 0 && prev[y])), cur[y], 0);
                if (!cur[y]) continue;
                std::fill(near.begin(), near.end(), 0);
                if (y) add_small(near.data(), row - nx, nx);
                if (z) add_small(near.data(), row - plane, nx);
                int64_t a = 0;
                for (int64_t x = 0; x < nx; ++x) {
                    const int64_t k = row[x];
                    put(code_context(cls, near[x], small(a)), symbol_of(k, a, esc), static_cast<int>(x & 3));
                    a = k;
                }
            }
        }
        pos += r.nz * plane;
    }
}

struct Segment {
    std::vector<uint8_t> ctx, sym;
    std::string escapes;
};

Segment symbols_of(const std::vector<Row>& rows, const int64_t* codes) {
    Segment s;
    BitWriter esc;
    size_t most = static_cast<size_t>(count_of(rows));  // a symbol per code at most, and one per row
    for (const Row& r : rows) most += static_cast<size_t>(r.nz * r.ny);
    s.ctx.resize(most);
    s.sym.resize(most);
    size_t n = 0;
    symbols(rows, codes, esc, [&](int c, int v, int) {
        s.ctx[n] = static_cast<uint8_t>(c);
        s.sym[n++] = static_cast<uint8_t>(v);
    });
    s.ctx.resize(n);
    s.sym.resize(n);
    s.escapes = esc.finish();
    return s;
}

// A segment's bytes: the two rANS states the decoder starts from (u32 each), the number of 16-bit words, the
// words in the order they are read, then the escapes' bits. Symbol j goes to state j % 2; the states are coded
// from the last symbol back, so that they decode forward.
std::string encode_segment(const Segment& s, const Tables& t) {
    // x / f without a division (a third of the coding time): ((x * m) >> 64) with m = 2^64 / f rounded up is
    // exact for every 32-bit x (Lemire, Kaser and Kurz 2019); f = 1 (m past 64 bits) divides as it is
    uint64_t magic[N_CONTEXTS][ALPHABET] = {};
    for (int c = 0; c < N_CONTEXTS; ++c)
        for (int v = 0; v < ALPHABET; ++v)
            if (t.freq[c][v] > 1) magic[c][v] = ~uint64_t{0} / t.freq[c][v] + 1;
    auto quotient = [&](uint32_t x, uint32_t f, uint64_t m) -> uint32_t {
#if defined(__SIZEOF_INT128__)
        return f == 1 ? x : static_cast<uint32_t>((static_cast<unsigned __int128>(m) * x) >> 64);
#else
        (void)m;
        return x / f;
#endif
    };
    const size_t n = s.sym.size();
    uint32_t cur = LOW, other = LOW;  // the states of symbol j's parity and of the other one
    std::vector<uint16_t> words;
    words.reserve(n / 4 + 16);
    for (size_t j = n; j-- > 0;) {
        const int c = s.ctx[j], v = s.sym[j];
        const uint32_t f = t.freq[c][v];
        if (static_cast<uint64_t>(cur) >= (static_cast<uint64_t>(f) << (32 - PROB_BITS))) {
            words.push_back(static_cast<uint16_t>(cur & 0xFFFF));
            cur >>= 16;
        }
        const uint32_t q = quotient(cur, f, magic[c][v]);
        cur = (q << PROB_BITS) + (cur - q * f) + t.start[c][v];
        std::swap(cur, other);
    }
    // after symbol 0 and its swap, other holds the state of the even symbols
    const uint32_t x[2] = {other, cur};
    std::string out;
    for (uint32_t v : x)
        for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    put_varint(out, words.size());
    for (size_t i = words.size(); i-- > 0;) {
        out.push_back(static_cast<char>(words[i] & 0xFF));
        out.push_back(static_cast<char>(words[i] >> 8));
    }
    return out + s.escapes;
}

// The decoder's view of the tables: per context and slot, the slot's offset in its symbol's range (bits 0-9),
// min(|code|, 3) as the byte offset of the next code's context's table from the table of its context less it
// (bits 12-13: read straight from here into the next load's address), the symbol (bits 14-17) and its frequency
// (bits 21-31): one load gives all that a symbol's decoding reads, each part in one or two instructions.
struct Lookup {
    std::vector<uint32_t> slot;  // N_CONTEXTS * SCALE
    const Tables* t;
    static constexpr uint32_t OFFSET = SCALE - 1, NEXT_SHIFT = PROB_BITS + 2, NEXT = 3u << NEXT_SHIFT,
                              SYMBOL = NEXT_SHIFT + 2, FREQ = 32 - (PROB_BITS + 1);
    static_assert(SYMBOL + 4 <= FREQ, "the fields of an entry overlap");
    static constexpr uint32_t entry(int s, uint32_t offset, uint32_t freq) {
        return offset | static_cast<uint32_t>(std::min((s + 1) >> 1, 3)) << NEXT_SHIFT |
               static_cast<uint32_t>(s) << SYMBOL | freq << FREQ;
    }
    static constexpr uint32_t symbol(uint32_t e) { return (e >> SYMBOL) & 15; }
    explicit Lookup(const Tables& tables)
        : slot(static_cast<size_t>(N_CONTEXTS) * SCALE, entry(ESCAPE, 0, 0)), t(&tables) {
        for (int c = 0; c < N_CONTEXTS; ++c) {
            if (!tables.used[c]) continue;  // stays an ESCAPE: decoding there is caught on the escape's path
            uint32_t* out = slot.data() + static_cast<size_t>(c) * SCALE;
            for (int s = 0; s < ALPHABET; ++s) {  // a symbol's slots: its entry with offsets 0, 1, ... (vectorised)
                const uint32_t first = entry(s, 0, tables.freq[c][s]);
                uint32_t* at = out + tables.start[c][s];
                for (uint32_t i = 0; i < tables.freq[c][s]; ++i) at[i] = first + i;
            }
        }
    }
};

// The two rANS states (the next symbol comes from x0) and the next 16-bit word to read.
struct Rans {
    uint32_t x0, x1;
    uint64_t wpos;
};

// One symbol's table entry (Lookup) in the context whose table starts at slots[at], next bytes on (next: what the
// code before adds, last in the chain from code to code: the load's index), from state x0; then the
// states swap, so that the next symbol comes from the other one. The refill is a select, not a branch (its word is
// read whether taken or not: the words are padded).
inline uint32_t next_entry(uint32_t& x0, uint32_t& x1, uint64_t& wpos, uint32_t at, uint32_t next,
                           const uint32_t* __restrict slots, const uint16_t* __restrict words) {
    const char* table = reinterpret_cast<const char*>(slots + at + (x0 & (SCALE - 1)));
#if defined(__GNUC__)
    asm("" : "+r"(table));  // kept in a register, so that next is the load's index (not summed before it)
#endif
    const uint32_t e = *reinterpret_cast<const uint32_t*>(table + next);
    uint32_t x = (e >> Lookup::FREQ) * (x0 >> PROB_BITS) + (e & Lookup::OFFSET);
    const uint32_t filled = (x << 16) | words[wpos];
    wpos += x < LOW;
#if defined(__GNUC__) && defined(__x86_64__)
    asm("cmpl %[low], %[x]\n\tcmovb %[filled], %[x]" : [x] "+r"(x) : [filled] "r"(filled), [low] "i"(LOW) : "cc");
#else
    x = x < LOW ? filled : x;
#endif
    x0 = x;
    std::swap(x0, x1);
    return e;
}

// A symbol below ESCAPE as the code it stands for before its sign is mirrored: 0, 1, -1, 2, -2, ...
template <class K>
constexpr K value_of(int s) {
    return s == 0 ? K(0) : (s & 1) ? K((s + 1) / 2) : K(-(s / 2));
}

// The codes of a busy row from x on (contexts[x]: where the table of each one's context less min(|a|, 3) starts)
// into out, and min(|code|, 3) of each into sizes (what the contexts of the rows after it are summed from), until
// the row ends (returns nx) or an escape (returns its x; out[x] and sizes[x] not written, next not moved past it). next
// and mirror: what the
// code before adds to the context (Lookup::NEXT bits) and -1 when it is < 0 (else 0). Its own function, every
// pointer restrict: the loop keeps its state in registers. The context is a chain from code to code: a load, an
// and, an add.
template <class K>
int64_t decode_run(Rans& st, const uint32_t* __restrict contexts, K* __restrict out, uint8_t* __restrict sizes,
                   int64_t x, int64_t nx, uint32_t& next_io, K& mirror_io, const uint32_t* __restrict slots,
                   const uint16_t* __restrict words) {
    static constexpr K VALUES[ESCAPE] = {value_of<K>(0),  value_of<K>(1),  value_of<K>(2),  value_of<K>(3),
                                         value_of<K>(4),  value_of<K>(5),  value_of<K>(6),  value_of<K>(7),
                                         value_of<K>(8),  value_of<K>(9),  value_of<K>(10), value_of<K>(11),
                                         value_of<K>(12), value_of<K>(13), value_of<K>(14)};
    uint32_t x0 = st.x0, x1 = st.x1, next = next_io;
    uint64_t wpos = st.wpos;
    K mirror = mirror_io;
    for (; x < nx; ++x) {
        const uint32_t e = next_entry(x0, x1, wpos, contexts[x], next, slots, words), s = Lookup::symbol(e);
        if (s == ESCAPE) break;  // next left as it was: the escape's context is the caller's to check
        next = e & Lookup::NEXT;
        sizes[x] = static_cast<uint8_t>(next >> Lookup::NEXT_SHIFT);
        const K k = static_cast<K>((VALUES[s] ^ mirror) - mirror);  // no branch on the value: it is not predictable
        out[x] = k;
        mirror = static_cast<K>(k >> (8 * sizeof(K) - 1));
    }
    st = {x0, x1, wpos};
    next_io = next;
    mirror_io = mirror;
    return x;
}

// Decodes one segment into codes (every one written); "" when well formed, else why not (WIDE: a code past K).
template <class K>
std::string decode_segment(std::string_view data, const std::vector<Row>& rows, const Lookup& lut, K* codes) {
    const std::string bad = "residual codes malformed: ";
    if (data.size() < 9) return bad + "a table-coded segment of " + std::to_string(data.size()) + " bytes";
    Rans st{0, 0, 0};
    for (int i = 3; i >= 0; --i) {
        st.x0 = (st.x0 << 8) | static_cast<uint8_t>(data[i]);
        st.x1 = (st.x1 << 8) | static_cast<uint8_t>(data[4 + i]);
    }
    size_t at = 8;
    const auto count = take_varint(data, at);
    if (!count) return bad + "word count";
    const uint64_t nwords = *count;
    if (nwords > (data.size() - at) / 2) return bad + "words past the end";
    int64_t widest = 0;
    for (const Row& r : rows) widest = std::max(widest, r.nx);
    // padded with zeros for the reads of a row that starts at most at nwords (a row refills at most nx + 1 times)
    std::vector<uint16_t> words(nwords + static_cast<uint64_t>(widest) + 2, 0);
    for (uint64_t i = 0; i < nwords; ++i)
        words[i] = static_cast<uint16_t>(static_cast<uint8_t>(data[at + 2 * i]) |
                                         (static_cast<uint8_t>(data[at + 2 * i + 1]) << 8));
    BitReader esc(data.substr(at + 2 * nwords));
    const Tables& t = *lut.t;
    const uint32_t* slots = lut.slot.data();
    int64_t pos = 0;
    std::vector<uint8_t> busy, sizes;
    std::vector<uint32_t> contexts;
    for (const Row& r : rows) {
        const int cls = level_class(r.level);
        const int64_t nx = r.nx, ny = r.ny, plane = ny * nx;
        busy.assign(2 * static_cast<size_t>(ny), 0);
        // min(|code|, 3) of this plane's codes and the one before: every row is written before it is read
        sizes.resize(2 * static_cast<size_t>(plane));
        contexts.resize(static_cast<size_t>(nx));
        uint32_t* ctx = contexts.data();
        for (int64_t z = 0; z < r.nz; ++z) {
            uint8_t* cur = busy.data() + (z % 2) * ny;
            const uint8_t* prev = busy.data() + ((z + 1) % 2) * ny;
            for (int64_t y = 0; y < ny; ++y) {
                K* out = codes + pos + (z * ny + y) * nx;
                const int rc = row_context(cls, (y > 0 && cur[y - 1]) + (z > 0 && prev[y]));
                if (!t.used[rc]) return bad + "a row in a context that has no table";
                if (st.wpos > nwords) return bad + "the words run out";
                const uint32_t e = next_entry(st.x0, st.x1, st.wpos, static_cast<uint32_t>(rc) << PROB_BITS, 0, slots,
                                              words.data());
                cur[y] = static_cast<uint8_t>(Lookup::symbol(e));  // 0 or 1: a row table has two symbols
                uint8_t* size = sizes.data() + (z % 2) * plane + y * nx;
                if (!cur[y]) {
                    std::fill(out, out + nx, 0);
                    std::fill(size, size + nx, 0);
                    continue;
                }
                // each code's context less min(|a|, 3), from the sizes of the codes before it along y and z
                const uint32_t base = static_cast<uint32_t>(code_context(cls, 0, 0)) << PROB_BITS;
                const uint8_t* b = size - nx;
                const uint8_t* c = sizes.data() + ((z + 1) % 2) * plane + y * nx;
                constexpr int SHIFT = PROB_BITS + 2;  // 4 contexts (of min(|a|, 3)) apart per step of near
                if (y && z) {
                    for (int64_t x = 0; x < nx; ++x) ctx[x] = base + (std::min<uint32_t>(b[x] + c[x], NEAR) << SHIFT);
                } else if (y || z) {
                    const uint8_t* d = y ? b : c;
                    for (int64_t x = 0; x < nx; ++x) ctx[x] = base + (static_cast<uint32_t>(d[x]) << SHIFT);
                } else {
                    std::fill(ctx, ctx + nx, base);
                }
                uint32_t next = 0;
                K mirror = 0;
                for (int64_t x = 0;; ++x) {
                    x = decode_run(st, ctx, out, size, x, nx, next, mirror, slots, words.data());
                    if (x >= nx) break;
                    if (!t.used[(ctx[x] >> PROB_BITS) + (next >> Lookup::NEXT_SHIFT)])
                        return bad + "a symbol in a context that has no table";
                    next = Lookup::NEXT;  // min(|escape|, 3) = 3
                    const uint64_t mag = esc.gamma() + DIRECT;
                    const bool neg = (esc.bit() != 0) != (mirror != 0);
                    if (mag == DIRECT) return bad + "an escape runs past 64 bits";
                    constexpr uint64_t LIMIT = uint64_t{1} << 63;  // |INT64_MIN|: the one magnitude with no positive
                    if (mag > LIMIT || (mag == LIMIT && !neg)) return bad + "a code past 64 bits";
                    if constexpr (sizeof(K) < sizeof(int64_t))
                        if (mag >= static_cast<uint64_t>(std::numeric_limits<K>::max())) return WIDE;
                    const auto m = static_cast<K>(mag);  // 2^63 wraps to INT64_MIN, the one code of that size
                    out[x] = neg ? static_cast<K>(K(0) - m) : m;
                    size[x] = 3;
                    mirror = neg ? K(-1) : K(0);
                }
            }
        }
        pos += r.nz * plane;
    }
    if (st.wpos != nwords || st.x0 != LOW || st.x1 != LOW)
        return bad + "the rANS states do not end where they began";
    if (esc.past() || at + 2 * nwords + esc.bytes_read() != data.size())
        return bad + "the escapes do not end with the segment";
    return "";
}

// inr/table_coding.py encode: (the tables' bytes, each segment's bytes) of the codes of each table's passes (the
// segments' codes from codes[firsts[i]]), the tables from all of them.
py::tuple encode(py::array_t<int64_t, py::array::c_style> codes_arr, py::list tables,
                 py::array_t<int64_t, py::array::c_style> firsts, int threads) {
    const auto segs = parts_of(tables);
    const auto first = firsts_given(segs, firsts, codes_arr.size(), "table coder");
    std::string head;
    std::vector<std::string> out(segs.size());
    {
        py::gil_scoped_release release;
        std::vector<Segment> sym(segs.size());
#pragma omp parallel for num_threads(std::max(threads, 1)) schedule(dynamic, 1) if (segs.size() > 1 && threads > 1)
        for (int i = 0; i < static_cast<int>(segs.size()); ++i)
            sym[i] = symbols_of(segs[i], codes_arr.data() + first[i]);
        std::vector<uint64_t> hist(static_cast<size_t>(N_CONTEXTS) * ALPHABET, 0);
        for (const auto& s : sym)
            for (size_t j = 0; j < s.sym.size(); ++j) ++hist[static_cast<size_t>(s.ctx[j]) * ALPHABET + s.sym[j]];
        Tables t;
        BitWriter w;
        for (int c = 0; c < N_CONTEXTS; ++c) write_table(hist.data() + static_cast<size_t>(c) * ALPHABET, w, t.freq[c]);
        t.finish();
        head = w.finish();
#pragma omp parallel for num_threads(std::max(threads, 1)) schedule(dynamic, 1) if (segs.size() > 1 && threads > 1)
        for (int i = 0; i < static_cast<int>(segs.size()); ++i) out[i] = encode_segment(sym[i], t);
    }
    py::list parts;
    for (const auto& o : out) parts.append(py::bytes(o));
    return py::make_tuple(py::bytes(head), parts);
}

// inr/table_coding.py estimate_bytes: about the bytes of encode's tables and one segment of the codes of the passes
// in table: the tables written, each symbol's cost under them (LOG_COST), the escapes' bits, the segment's states
// and word count; from every every-th row, the counts times every. A walk of the codes, no rANS.
int64_t estimate(py::array_t<int64_t, py::array::c_style> codes_arr, py::array_t<int64_t, py::array::c_style> table,
                 int64_t every) {
    if (every < 1) throw std::invalid_argument("table coder: every must be at least 1");
    const auto rows = rows_of(table, codes_arr.size());
    py::gil_scoped_release release;
    constexpr size_t BINS = static_cast<size_t>(N_CONTEXTS) * ALPHABET;
    std::vector<uint64_t> lanes(4 * BINS, 0), hist(BINS, 0);
    BitCount esc;
    symbols(
        rows, codes_arr.data(), esc,
        [&](int c, int v, int lane) { ++lanes[lane * BINS + static_cast<size_t>(c) * ALPHABET + v]; }, every);
    for (size_t i = 0; i < 4 * BINS; ++i) hist[i % BINS] += lanes[i] * static_cast<uint64_t>(every);
    BitWriter w;
    uint64_t units = 0;
    for (int c = 0; c < N_CONTEXTS; ++c) {
        uint16_t freq[ALPHABET] = {};
        const uint64_t* h = hist.data() + static_cast<size_t>(c) * ALPHABET;
        write_table(h, w, freq);
        for (int v = 0; v < ALPHABET; ++v)
            if (h[v]) units += h[v] * LOG_COST[static_cast<uint32_t>(freq[v]) << (12 - PROB_BITS)];
    }
    const uint64_t data = (units + 8 * COST_UNITS - 1) / (8 * COST_UNITS);
    return static_cast<int64_t>(w.finish().size() + data + (esc.n * static_cast<uint64_t>(every) + 7) / 8 + 8 + 3);
}

// inr/table_coding.py decode: the n codes (int32, or int64 where one does not fit) of the segments coding the
// passes of each table, their tables from data[at:], then the segments, the first sizes[i] bytes each (the last:
// the rest).
py::array decode(py::bytes data_obj, py::list tables, int64_t at_tables,
                 py::array_t<int64_t, py::array::c_style> sizes, int64_t n, int threads) {
    const std::string_view data(data_obj);
    const auto segs = parts_of(tables);
    if (sizes.size() + 1 != static_cast<py::ssize_t>(segs.size()))
        throw std::invalid_argument("table coder: one size per segment but the last");
    if (firsts_of(segs).back() != n)
        throw std::invalid_argument("table coder: the parts do not cover the codes");
    if (at_tables < 0 || at_tables > static_cast<int64_t>(data.size()))
        throw std::invalid_argument("residual codes malformed: tables past the end");
    size_t at = static_cast<size_t>(at_tables);
    const Tables t = read_tables(data, at);
    const Lookup lut(t);
    std::vector<std::string_view> parts;
    for (py::ssize_t i = 0; i < static_cast<py::ssize_t>(segs.size()); ++i) {
        const uint64_t left = data.size() - at;
        const bool last = i + 1 == static_cast<py::ssize_t>(segs.size());
        const uint64_t len = last ? left : static_cast<uint64_t>(sizes.data()[i]);
        if (len > left) throw std::invalid_argument("residual codes malformed: segment past the end");
        parts.push_back(data.substr(at, len));
        at += len;
    }
    return int32_or_int64(n, [&](auto* codes) {
        return decode_segments(segs, codes, threads,
                               [&](int i, auto* c) { return decode_segment(parts[i], segs[i], lut, c); });
    });
}

}  // namespace

void register_table_coder(py::module_& m) {
    m.def("table_encode", &encode, py::arg("codes"), py::arg("tables"), py::arg("firsts"), py::arg("threads") = 1,
          "(tables' bytes, [segment bytes]) of the codes of each table's passes (inr/table_coding.py).");
    m.def("table_estimate", &estimate, py::arg("codes"), py::arg("table"), py::arg("every") = 1,
          "About the bytes of the tables and one segment of the codes of the passes in table (inr/table_coding.py).");
    m.def("table_decode", &decode, py::arg("data"), py::arg("tables"), py::arg("at"), py::arg("sizes"), py::arg("n"),
          py::arg("threads") = 1,
          "The n codes (int32, or int64 where one does not fit) of a table-coded stream (inr/table_coding.py).");
}

}  // namespace inr
