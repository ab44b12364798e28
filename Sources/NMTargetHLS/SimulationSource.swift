/// The C simulation's support: the ap_int / hls::stream subset for machines without Vitis HLS,
/// and the testbench.
enum SimulationSource {
    /// kernel/nmc_hls_types.h: the vendor headers when present, else the same semantics here.
    static let hlsTypes = #"""
// The subset of Vitis HLS's ap_int.h and hls_stream.h that the NMC kernel uses, with the same
// semantics, for building the C simulation where the vendor headers are absent: ap_int<W> and
// ap_uint<W> (W <= 64) wrap to W bits on construction (two's complement for ap_int), and
// hls::stream<T> is a FIFO whose read() of an empty stream is an error.
#ifndef NMC_HLS_TYPES_H
#define NMC_HLS_TYPES_H

#if __has_include(<ap_int.h>) && __has_include(<hls_stream.h>) && !defined(NMC_OWN_HLS_TYPES)
#include <ap_int.h>
#include <hls_stream.h>
#else
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>

template <int W>
class ap_uint {
    static_assert(W >= 1 && W <= 64, "this ap_uint subset holds 1 to 64 bits");
    uint64_t v_;
    static constexpr uint64_t mask() { return W == 64 ? ~uint64_t(0) : (uint64_t(1) << W) - 1; }

public:
    ap_uint() : v_(0) {}
    ap_uint(uint64_t v) : v_(v & mask()) {}
    ap_uint(int v) : v_(uint64_t(int64_t(v)) & mask()) {}
    ap_uint(long long v) : v_(uint64_t(v) & mask()) {}
    unsigned to_uint() const { return unsigned(v_); }
    uint64_t to_uint64() const { return v_; }
    int to_int() const { return int(v_); }
};

template <int W>
class ap_int {
    static_assert(W >= 1 && W <= 64, "this ap_int subset holds 1 to 64 bits");
    int64_t v_;

public:
    ap_int() : v_(0) {}
    // Keeps the low W bits and sign-extends from bit W-1, as the vendor type does.
    ap_int(int64_t v) {
        const uint64_t u = W == 64 ? uint64_t(v) : uint64_t(v) & ((uint64_t(1) << W) - 1);
        const uint64_t sign = uint64_t(1) << (W - 1);
        v_ = int64_t(u ^ sign) - int64_t(sign);
    }
    ap_int(int v) : ap_int(int64_t(v)) {}
    int to_int() const { return int(v_); }
    int64_t to_int64() const { return v_; }
};

namespace hls {
template <typename T>
class stream {
    std::deque<T> fifo_;
    const char* name_;

public:
    explicit stream(const char* name = "stream") : name_(name) {}
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;
    void write(const T& v) { fifo_.push_back(v); }
    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "hls::stream %s: read from an empty stream\n", name_);
            std::abort();
        }
        T v = fifo_.front();
        fifo_.pop_front();
        return v;
    }
    bool empty() const { return fifo_.empty(); }
    std::size_t size() const { return fifo_.size(); }
};
}  // namespace hls
#endif
#endif
"""#

    /// tb/nmc_tb.cpp: every layer shape's vectors, compared bit for bit.
    static let testbench = #"""
// C simulation testbench: runs every layer shape's test vectors through the kernel and compares
// the outputs bit for bit with those of NMC's interpreter. Usage: nmc_tb VECTORS_DIR
// (VECTORS_DIR/index.txt names one folder per layer shape).
#include "nmc_linear.h"
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

template <typename T>
bool read_array(const std::string& path, std::vector<T>& out, std::size_t count) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "%s: cannot open\n", path.c_str());
        return false;
    }
    out.resize(count);
    in.read(reinterpret_cast<char*>(out.data()), std::streamsize(count * sizeof(T)));
    if (std::size_t(in.gcount()) != count * sizeof(T) || in.peek() != EOF) {
        std::fprintf(stderr, "%s: expected %zu bytes\n", path.c_str(), count * sizeof(T));
        return false;
    }
    return true;
}

uint32_t bits_of(float v) {
    uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}

// Runs one layer shape's vectors; returns true when every output matches.
bool run_layer(const std::string& dir) {
    std::ifstream meta(dir + "/meta.txt");
    int tokens = 0, rows = 0, columns = 0, folds = 0, tiles = 0;
    if (!(meta >> tokens >> rows >> columns >> folds >> tiles) || tokens < 1 || rows < 1 || columns < 1 || folds < 1) {
        std::fprintf(stderr, "%s/meta.txt: expected 'tokens rows columns folds tiles'\n", dir.c_str());
        return false;
    }
    std::vector<float> x, scales, expected;
    std::vector<uint64_t> raw_weights;
    std::vector<int32_t> fold_groups, fold_weight_groups;
    const std::size_t n_tokens = std::size_t(tokens), n_rows = std::size_t(rows), n_columns = std::size_t(columns);
    if (!read_array(dir + "/x.bin", x, n_tokens * n_columns) ||
        !read_array(dir + "/weights.bin", raw_weights, std::size_t(tiles) * ARRAY_ROWS * BEAT_WORDS) ||
        !read_array(dir + "/scales.bin", scales, std::size_t(tiles) * ARRAY_ROWS * SEGMENTS) ||
        !read_array(dir + "/fold_groups.bin", fold_groups, std::size_t(folds) * ARRAY_COLS) ||
        !read_array(dir + "/fold_weight_groups.bin", fold_weight_groups, std::size_t(folds) * SEGMENTS) ||
        !read_array(dir + "/expected.bin", expected, n_tokens * n_rows))
        return false;
    std::vector<word_t> weights(raw_weights.size());
    for (std::size_t i = 0; i < raw_weights.size(); i++) weights[i] = word_t(raw_weights[i]);
    std::vector<act_t> xq(n_tokens * n_columns);
    std::vector<float> x_scale(n_tokens), y(n_tokens * n_rows, -1.0f);
    nmc_quantize_activations(x.data(), xq.data(), x_scale.data(), tokens, columns);
    if (nmc_linear(xq.data(), x_scale.data(), weights.data(), scales.data(), fold_groups.data(),
                   fold_weight_groups.data(), y.data(), tokens, rows, columns, folds) != 0) {
        std::fprintf(stderr, "%s: the kernel refused %d tokens x %d columns (MAX_TOKENS %d, MAX_COLUMNS %d)\n",
                     dir.c_str(), tokens, columns, MAX_TOKENS, MAX_COLUMNS);
        return false;
    }
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < y.size(); i++) {
        if (bits_of(y[i]) == bits_of(expected[i])) continue;
        if (mismatches < 5)
            std::fprintf(stderr, "%s: token %zu row %zu: kernel %.9g (0x%08x), interpreter %.9g (0x%08x)\n", dir.c_str(),
                         i / n_rows, i % n_rows, double(y[i]), bits_of(y[i]), double(expected[i]), bits_of(expected[i]));
        mismatches++;
    }
    std::printf("%-24s %5d x %-5d %d tokens, %3d folds, %5d tiles: %s (%zu of %zu outputs differ)\n", dir.c_str(), rows,
                columns, tokens, folds, tiles, mismatches == 0 ? "bit-exact" : "MISMATCH", mismatches, y.size());
    return mismatches == 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    const std::string root = argv[1];
    std::ifstream index(root + "/index.txt");
    if (!index) {
        std::fprintf(stderr, "%s/index.txt: cannot open\n", root.c_str());
        return 1;
    }
    int layers = 0, failed = 0;
    for (std::string name; std::getline(index, name);) {
        if (name.empty()) continue;
        layers++;
        if (!run_layer(root + "/" + name)) failed++;
    }
    std::printf("%d layer shapes, %d bit-exact, %d failed (array %dx%d, PE %d:%d)\n", layers, layers - failed, failed,
                ARRAY_ROWS, ARRAY_COLS, PE_N, PE_M);
    return failed == 0 && layers > 0 ? 0 : 1;
}
"""#
}
