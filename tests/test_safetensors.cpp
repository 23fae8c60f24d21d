// Tests for host/io: fp16/bf16 conversion, the safetensors writer, and the reader against malformed input.
#include "io/half.h"
#include "io/safetensors.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace vkmha;
using namespace vkmha::io;

namespace {

const std::string origin = "test.safetensors";

std::vector<uint8_t> with_length_prefix(std::string_view header, const std::vector<uint8_t>& data = {}) {
    std::vector<uint8_t> out(8);
    const uint64_t length = header.size();
    for (size_t i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(length >> (8 * i));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

std::vector<uint8_t> with_length_prefix(std::string_view header, size_t data_bytes) {
    return with_length_prefix(header, std::vector<uint8_t>(data_bytes, 0));
}

// Parses a copy sized exactly to the input, so that ASan sees any read past its end.
Result<std::vector<Tensor>> parse(const std::vector<uint8_t>& file) {
    auto exact = std::make_unique<uint8_t[]>(std::max<size_t>(file.size(), 1));
    if (!file.empty()) std::memcpy(exact.get(), file.data(), file.size());
    return parse_safetensors(file.empty() ? nullptr : exact.get(), file.size(), origin);
}

void check_one_line_error(const Error& error, ErrorCode code = ErrorCode::io) {
    CAPTURE(error.message);
    CHECK(error.code == code);
    CHECK(error.message.rfind(origin + ": ", 0) == 0);
    CHECK(error.message.find('\n') == std::string::npos);
    CHECK(error.message.find('\r') == std::string::npos);
}

// The error message for a file that must be rejected.
std::string rejection(const std::vector<uint8_t>& file) {
    auto result = parse(file);
    REQUIRE_FALSE(result.ok());
    check_one_line_error(result.error());
    return result.error().message;
}

std::string rejection(std::string_view header, size_t data_bytes = 0) {
    return rejection(with_length_prefix(header, data_bytes));
}

std::string one_tensor_header(std::string_view dtype, std::string_view shape, std::string_view offsets) {
    return "{\"t\":{\"dtype\":" + std::string(dtype) + ",\"shape\":" + std::string(shape) +
           ",\"data_offsets\":" + std::string(offsets) + "}}";
}

std::vector<uint8_t> random_bytes(size_t count, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(count);
    for (auto& byte : out) byte = static_cast<uint8_t>(rng());
    return out;
}

Tensor make_tensor(std::string name, DType dtype, std::vector<uint64_t> shape, uint32_t seed) {
    uint64_t count = 1;
    for (const uint64_t dim : shape) count *= dim;
    Tensor tensor{std::move(name), dtype, std::move(shape), {}};
    tensor.data = random_bytes(static_cast<size_t>(count * dtype_size(dtype)), seed);
    return tensor;
}

void check_same(const std::vector<Tensor>& actual, const std::vector<Tensor>& expected) {
    REQUIRE(actual.size() == expected.size());
    for (const Tensor& want : expected) {
        CAPTURE(want.name);
        const Tensor* got = find_tensor(actual, want.name);
        REQUIRE(got != nullptr);
        CHECK(got->dtype == want.dtype);
        CHECK(got->shape == want.shape);
        CHECK(got->data == want.data);
    }
}

// The begin offset the writer gave `name`, read from the header text.
uint64_t begin_offset_in_header(const std::vector<uint8_t>& file, const std::string& name) {
    const std::string text(file.begin(), file.end());
    const size_t entry = text.find("\"" + name + "\":{");
    REQUIRE(entry != std::string::npos);
    const std::string key = "\"data_offsets\":[";
    const size_t offsets = text.find(key, entry);
    REQUIRE(offsets != std::string::npos);
    return std::stoull(text.substr(offsets + key.size()));
}

uint64_t header_length(const std::vector<uint8_t>& file) {
    uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = (length << 8) | file[static_cast<size_t>(i)];
    return length;
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::random_device seed;
        path = std::filesystem::temp_directory_path() / ("vkmha_io_test_" + std::to_string(seed()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Exact value of a finite half, computed independently of half_to_float.
double half_value(uint16_t h) {
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
    return (h & 0x8000) ? -magnitude : magnitude;
}

std::vector<uint8_t> small_valid_file() {
    std::vector<Tensor> tensors = {
        make_f32_tensor("w", {2, 2}, {1.0f, 2.0f, 3.0f, 4.0f}),
        make_tensor("h", DType::f16, {3}, 7),
        make_tensor("b", DType::boolean, {2}, 8),
    };
    auto bytes = serialize_safetensors(tensors);
    REQUIRE(bytes.ok());
    return bytes.value();
}

} // namespace

TEST_SUITE("safetensors") {

    TEST_CASE("half: every fp16 value round-trips through float exactly") {
        int checked = 0;
        for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
            const auto h = static_cast<uint16_t>(bits);
            const float f = half_to_float(h);
            if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0) {
                REQUIRE(std::isnan(f));
                REQUIRE(std::signbit(f) == ((h & 0x8000) != 0));
            } else if (((h >> 10) & 0x1f) == 0x1f) {
                REQUIRE(std::isinf(f));
            } else {
                REQUIRE(static_cast<double>(f) == half_value(h));
                REQUIRE(std::signbit(f) == ((h & 0x8000) != 0)); // -0 stays -0
            }
            REQUIRE(float_to_half(f) == h); // NaN payloads included
            ++checked;
        }
        CHECK(checked == 65536);
    }

    TEST_CASE("half: float_to_half rounds to nearest, ties to even, at every rounding boundary") {
        // Between every pair of neighbouring halfs: the midpoint (a tie) and the floats just either side of it.
        for (uint16_t h = 0; h < 0x7c00; ++h) {
            const double low = half_value(h);
            const double high = h == 0x7bff ? 65536.0 : half_value(static_cast<uint16_t>(h + 1));
            const auto mid = static_cast<float>((low + high) / 2);
            REQUIRE(static_cast<double>(mid) == (low + high) / 2); // representable: 12 significant bits
            const auto next = static_cast<uint16_t>(h + 1);
            const uint16_t even = (h & 1) ? next : h;
            for (const float sign : {1.0f, -1.0f}) {
                const uint16_t sign_bit = sign < 0 ? 0x8000 : 0;
                CAPTURE(h);
                REQUIRE(float_to_half(sign * static_cast<float>(low)) == (h | sign_bit));
                REQUIRE(float_to_half(sign * mid) == (even | sign_bit));
                REQUIRE(float_to_half(sign * std::nextafter(mid, 0.0f)) == (h | sign_bit));
                REQUIRE(float_to_half(sign * std::nextafter(mid, 1e30f)) == (next | sign_bit));
            }
        }
    }

    TEST_CASE("half: float_to_half special values") {
        CHECK(float_to_half(0.0f) == 0x0000);
        CHECK(float_to_half(-0.0f) == 0x8000);
        CHECK(float_to_half(1.0f) == 0x3c00);
        CHECK(float_to_half(65504.0f) == 0x7bff);
        CHECK(float_to_half(65519.996f) == 0x7bff);
        CHECK(float_to_half(65520.0f) == 0x7c00);
        CHECK(float_to_half(1e10f) == 0x7c00);
        CHECK(float_to_half(-1e10f) == 0xfc00);
        CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00);
        CHECK(float_to_half(-std::numeric_limits<float>::infinity()) == 0xfc00);
        CHECK(float_to_half(std::numeric_limits<float>::max()) == 0x7c00);
        CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001); // smallest subnormal
        CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000); // tie with zero goes to even
        CHECK(float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
        CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);                       // 1.5 units ties to 2
        CHECK(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);                       // smallest normal
        CHECK(float_to_half(std::nextafter(std::ldexp(1.0f, -14), 0.0f)) == 0x0400); // rounds up into the normals
        CHECK(float_to_half(std::numeric_limits<float>::denorm_min()) == 0x0000);
        CHECK(float_to_half(-std::numeric_limits<float>::denorm_min()) == 0x8000);
        const uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
        CHECK((nan & 0x7c00) == 0x7c00);
        CHECK((nan & 0x3ff) != 0);
        // A NaN whose payload lies only in the bits that are dropped must not become infinity.
        CHECK((float_to_half(std::bit_cast<float>(0x7f800001u)) & 0x3ff) != 0);
    }

#ifdef __FLT16_MAX__
    TEST_CASE("half: float_to_half agrees with the compiler's _Float16 on a sweep of float bit patterns") {
        int mismatches = 0;
        for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 4093) {
            const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
            if (std::isnan(f)) continue;
            const _Float16 reference = static_cast<_Float16>(f);
            if (float_to_half(f) != std::bit_cast<uint16_t>(reference)) ++mismatches;
        }
        CHECK(mismatches == 0);
    }
#endif

    TEST_CASE("half: bfloat16 conversion") {
        for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
            const auto b = static_cast<uint16_t>(bits);
            const float f = bf16_to_float(b);
            if (std::isnan(f)) {
                REQUIRE(std::isnan(bf16_to_float(float_to_bf16(f))));
            } else {
                REQUIRE(float_to_bf16(f) == b);
            }
        }
        CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);       // tie to even (down)
        CHECK(float_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3f82);       // tie to even (up)
        CHECK(float_to_bf16(std::bit_cast<float>(0x7f7fffffu)) == 0x7f80); // max float rounds to inf
        CHECK(std::isnan(bf16_to_float(float_to_bf16(std::bit_cast<float>(0x7f800001u)))));
    }

    TEST_CASE("dtype: names, sizes and lookup agree") {
        for (const DType dtype : all_dtypes) {
            CAPTURE(dtype_name(dtype));
            CHECK(dtype_from_name(dtype_name(dtype)) == dtype);
            CHECK(dtype_size(dtype) >= 1);
        }
        CHECK(dtype_name(DType::f32) == "F32");
        CHECK(dtype_name(DType::boolean) == "BOOL");
        CHECK(dtype_name(DType::bf16) == "BF16");
        CHECK(dtype_size(DType::f16) == 2);
        CHECK(dtype_size(DType::f64) == 8);
        CHECK_FALSE(dtype_from_name("f32").has_value());
        CHECK_FALSE(dtype_from_name("").has_value());
        CHECK_FALSE(dtype_from_name("F32 ").has_value());
    }

    TEST_CASE("safetensors: round trip of every dtype") {
        TempDir dir;
        for (const DType dtype : all_dtypes) {
            SUBCASE(std::string(dtype_name(dtype)).c_str()) {
                const std::vector<Tensor> tensors = {
                    make_tensor("matrix", dtype, {3, 5}, 1),
                    make_tensor("scalar", dtype, {}, 2),
                    make_tensor("empty", dtype, {0, 4}, 3),
                    make_tensor("cube", dtype, {2, 1, 3}, 4),
                };
                auto bytes = serialize_safetensors(tensors);
                REQUIRE(bytes.ok());
                CHECK(header_length(bytes.value()) % 8 == 0);
                auto parsed = parse(bytes.value());
                REQUIRE(parsed.ok());
                check_same(parsed.value(), tensors);

                const std::string path = dir.file("roundtrip.safetensors");
                REQUIRE(write_safetensors(path, tensors).ok());
                auto read = read_safetensors(path);
                REQUIRE(read.ok());
                check_same(read.value(), tensors);
            }
        }
    }

    TEST_CASE("safetensors: mixed dtypes are laid out largest element first, each aligned") {
        std::vector<Tensor> tensors;
        uint32_t seed = 10;
        for (const DType dtype : all_dtypes)
            tensors.push_back(make_tensor("t_" + std::string(dtype_name(dtype)), dtype, {3}, seed++));
        auto bytes = serialize_safetensors(tensors);
        REQUIRE(bytes.ok());
        const uint64_t data_start = 8 + header_length(bytes.value());
        CHECK(data_start % 8 == 0);
        for (const Tensor& tensor : tensors) {
            CAPTURE(tensor.name);
            CHECK((data_start + begin_offset_in_header(bytes.value(), tensor.name)) % dtype_size(tensor.dtype) == 0);
        }
        auto parsed = parse(bytes.value());
        REQUIRE(parsed.ok());
        check_same(parsed.value(), tensors);
    }

    TEST_CASE("safetensors: writer output matches the reference implementation byte for byte") {
        // Expected bytes are the reference implementation's own test vectors.
        SUBCASE("no padding needed") {
            const std::vector<Tensor> tensors = {make_f32_tensor("attn.0", {1, 2, 3}, {0, 1, 2, 3, 4, 5})};
            const std::vector<uint8_t> expected = {
                64,  0,   0,   0,   0,   0,  0,  0,  123, 34, 97,  116, 116, 110, 46,  48,  34,  58,  123, 34,
                100, 116, 121, 112, 101, 34, 58, 34, 70,  51, 50,  34,  44,  34,  115, 104, 97,  112, 101, 34,
                58,  91,  49,  44,  50,  44, 51, 93, 44,  34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101,
                116, 115, 34,  58,  91,  48, 44, 50, 52,  93, 125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
                0,   0,   0,   64,  0,   0,  64, 64, 0,   0,  128, 64,  0,   0,   160, 64};
            auto bytes = serialize_safetensors(tensors);
            REQUIRE(bytes.ok());
            CHECK(bytes.value() == expected);
        }
        SUBCASE("padded with spaces to a multiple of 8") {
            const std::vector<Tensor> tensors = {make_f32_tensor("attn0", {1, 1, 2, 3}, {0, 1, 2, 3, 4, 5})};
            const std::vector<uint8_t> expected = {
                72,  0,   0,   0,  0,  0,  0,  0,  123, 34,  97, 116, 116, 110, 48,  34,  58,  123, 34,  100, 116,
                121, 112, 101, 34, 58, 34, 70, 51, 50,  34,  44, 34,  115, 104, 97,  112, 101, 34,  58,  91,  49,
                44,  49,  44,  50, 44, 51, 93, 44, 34,  100, 97, 116, 97,  95,  111, 102, 102, 115, 101, 116, 115,
                34,  58,  91,  48, 44, 50, 52, 93, 125, 125, 32, 32,  32,  32,  32,  32,  32,  0,   0,   0,   0,
                0,   0,   128, 63, 0,  0,  0,  64, 0,   0,   64, 64,  0,   0,   128, 64,  0,   0,   160, 64};
            auto bytes = serialize_safetensors(tensors);
            REQUIRE(bytes.ok());
            CHECK(bytes.value() == expected);
        }
        SUBCASE("no tensors") {
            auto bytes = serialize_safetensors({});
            REQUIRE(bytes.ok());
            CHECK(bytes.value() == std::vector<uint8_t>{8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32});
            auto parsed = parse(bytes.value());
            REQUIRE(parsed.ok());
            CHECK(parsed.value().empty());
        }
        SUBCASE("names are escaped as serde_json does and sorted by name") {
            const std::vector<Tensor> tensors = {make_f32_tensor("b", {}, {1}),
                                                 make_f32_tensor("a\"\\\n\x01", {}, {2})};
            auto bytes = serialize_safetensors(tensors);
            REQUIRE(bytes.ok());
            const std::string text(bytes.value().begin() + 8, bytes.value().end() - 8);
            CHECK(text.rfind(R"({"a\"\\\n\u0001":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[],"data_offsets":[4,8]}})",
                             0) == 0);
        }
    }

    TEST_CASE("safetensors: parses a hand-built file") {
        // Header order differs from data order; extra whitespace, an unknown key, metadata and escapes.
        const std::string header =
            " { \"__metadata__\" : {\"format\":\"pt\", \"note\":\"\\u00e9\"},\n"
            "  \"second\\u00e9\\ud83d\\ude00\": {\"data_offsets\": [8, 12], \"dtype\": \"\\u0046\\u00316\","
            " \"shape\": [2], \"extra\": [1, -2.5e3, {\"x\": [true, false, null]}, \"s\"]},\n"
            "  \"first\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}\t}\r\n  ";
        std::vector<uint8_t> data(12);
        const float first[2] = {1.5f, -2.0f};
        std::memcpy(data.data(), first, 8);
        const uint16_t second[2] = {float_to_half(0.25f), float_to_half(-3.0f)};
        std::memcpy(data.data() + 8, second, 4);
        auto parsed = parse(with_length_prefix(header, data));
        REQUIRE(parsed.ok());
        REQUIRE(parsed->size() == 2);
        CHECK(parsed.value()[0].name == "second\xc3\xa9\xf0\x9f\x98\x80"); // header order
        CHECK(parsed.value()[1].name == "first");
        CHECK(parsed.value()[0].dtype == DType::f16);
        const Tensor* f = find_tensor(parsed.value(), "first");
        REQUIRE(f != nullptr);
        auto values = to_float(*f, origin);
        REQUIRE(values.ok());
        CHECK(values.value() == std::vector<float>{1.5f, -2.0f});
        auto halves = to_float(parsed.value()[0], origin);
        REQUIRE(halves.ok());
        CHECK(halves.value() == std::vector<float>{0.25f, -3.0f});
    }

    TEST_CASE("safetensors: accepted edge cases") {
        SUBCASE("zero-size tensors share an offset") {
            auto parsed = parse(with_length_prefix(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                                   R"("b":{"dtype":"I64","shape":[3,0],"data_offsets":[0,0]},)"
                                                   R"("c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                                                   1));
            REQUIRE(parsed.ok());
            CHECK(parsed->size() == 3);
        }
        SUBCASE("null metadata, as the reference reads it") {
            CHECK(parse(with_length_prefix(R"({"__metadata__":null})")).ok());
        }
        SUBCASE("nesting inside an ignored key up to the depth limit") {
            const std::string nested = std::string(60, '[') + std::string(60, ']');
            CHECK(parse(with_length_prefix(R"({"t":{"dtype":"U8","shape":[],"data_offsets":[0,1],"x":)" + nested + "}}",
                                           1))
                      .ok());
        }
        SUBCASE("an empty tensor name") {
            CHECK(parse(with_length_prefix(R"({"":{"dtype":"U8","shape":[],"data_offsets":[0,1]}})", 1)).ok());
        }
    }

    TEST_CASE("safetensors: every truncated prefix of a valid file is an error") {
        const std::vector<uint8_t> file = small_valid_file();
        REQUIRE(parse(file).ok());
        for (size_t length = 0; length < file.size(); ++length) {
            CAPTURE(length);
            rejection(std::vector<uint8_t>(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(length)));
        }
        std::vector<uint8_t> longer = file;
        longer.push_back(0);
        CHECK(rejection(longer).find("data section has") != std::string::npos);

        TempDir dir;
        const std::string path = dir.file("truncated.safetensors");
        for (const size_t length : {size_t{0}, size_t{7}, size_t{8}, size_t{20}, file.size() - 1}) {
            CAPTURE(length);
            write_bytes(path, std::vector<uint8_t>(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(length)));
            auto read = read_safetensors(path);
            REQUIRE_FALSE(read.ok());
            CHECK(read.error().code == ErrorCode::io);
            CHECK(read.error().message.rfind(path + ": ", 0) == 0);
        }
    }

    TEST_CASE("safetensors: corrupted bytes never crash the reader") {
        const std::vector<uint8_t> file = small_valid_file();
        auto check_consistent = [](const Result<std::vector<Tensor>>& result) {
            if (!result.ok()) {
                CHECK(result.error().message.find('\n') == std::string::npos);
                return;
            }
            for (const Tensor& tensor : result.value()) {
                uint64_t count = 1;
                for (const uint64_t dim : tensor.shape) count *= dim;
                CHECK(tensor.data.size() == count * dtype_size(tensor.dtype));
            }
        };
        const uint8_t replacements[] = {0x00, 0xff, 0x80, '"', '\\', '{', '}', '[', ']', ',', ':', '9', ' ', '-'};
        for (size_t position = 0; position < file.size(); ++position) {
            for (const uint8_t replacement : replacements) {
                std::vector<uint8_t> corrupted = file;
                corrupted[position] = replacement;
                check_consistent(parse(corrupted));
            }
        }
        std::mt19937 rng(1234);
        for (int round = 0; round < 3000; ++round) {
            std::vector<uint8_t> corrupted = file;
            const int edits = 1 + static_cast<int>(rng() % 4);
            for (int e = 0; e < edits; ++e) corrupted[rng() % corrupted.size()] = static_cast<uint8_t>(rng());
            check_consistent(parse(corrupted));
        }
    }

    TEST_CASE("safetensors: header length is checked against the file") {
        SUBCASE("file shorter than the length field") {
            for (size_t size = 0; size < 8; ++size) {
                CAPTURE(size);
                CHECK(rejection(std::vector<uint8_t>(size, 0)).find("shorter than the 8-byte header length") !=
                      std::string::npos);
            }
        }
        SUBCASE("header claims more bytes than the file has") {
            std::vector<uint8_t> file = with_length_prefix("{}");
            file[0] = 3;
            CHECK(rejection(file) == origin + ": header length 3 exceeds the 2 bytes after the length");
        }
        SUBCASE("absurd header length") {
            std::vector<uint8_t> file = with_length_prefix("{}      ");
            const uint64_t length = (100ull << 20) + 1;
            for (size_t i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(length >> (8 * i));
            CHECK(rejection(file) == origin + ": header length 104857601 exceeds the 100 MiB limit");
            for (size_t i = 0; i < 8; ++i) file[i] = 0xff;
            CHECK(rejection(file).find("header length 18446744073709551615 exceeds the 100 MiB limit") !=
                  std::string::npos);
        }
        SUBCASE("empty header") {
            CHECK(rejection("") == origin + ": header is empty");
            CHECK(rejection("        ") == origin + ": header is empty");
        }
    }

    TEST_CASE("safetensors: offsets, shapes and sizes are validated") {
        SUBCASE("offsets beyond the data section") {
            CHECK(rejection(R"({"in_proj_weight":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]}})", 1024) ==
                  origin + ": tensor 'in_proj_weight': data_offsets [0, 4096] exceed the data section (1024 bytes)");
        }
        SUBCASE("reversed offsets") {
            CHECK(rejection(one_tensor_header("\"U8\"", "[4]", "[8,4]"), 8) ==
                  origin + ": tensor 't': data_offsets [8, 4] are reversed");
        }
        SUBCASE("offsets near UINT64_MAX") {
            CHECK(rejection(one_tensor_header("\"U8\"", "[4]", "[18446744073709551612,18446744073709551615]"), 4)
                      .find("exceed the data section (4 bytes)") != std::string::npos);
            CHECK(rejection(one_tensor_header("\"U8\"", "[0]", "[18446744073709551615,18446744073709551615]"), 4)
                      .find("exceed the data section") != std::string::npos);
            CHECK(rejection(one_tensor_header("\"U8\"", "[4]", "[0,18446744073709551616]"), 4) ==
                  origin + ": tensor 't': data_offsets[1] 18446744073709551616 does not fit in 64 bits");
            CHECK(rejection(one_tensor_header("\"U8\"", "[4]", "[0,99999999999999999999999]"), 4)
                      .find("does not fit in 64 bits") != std::string::npos);
        }
        SUBCASE("shape product overflow") {
            CHECK(rejection(one_tensor_header("\"U8\"", "[4294967296,4294967296,2]", "[0,0]")) ==
                  origin + ": tensor 't': shape [4294967296, 4294967296, 2] has more than 2^64 elements");
            CHECK(rejection(one_tensor_header("\"F32\"", "[4611686018427387904]", "[0,0]")) ==
                  origin + ": tensor 't': F32 shape [4611686018427387904] needs more than 2^64 bytes");
            CHECK(rejection(one_tensor_header("\"U8\"", "[18446744073709551615,18446744073709551615,0]", "[0,0]"))
                      .find("more than 2^64 elements") != std::string::npos);
        }
        SUBCASE("byte size does not match the shape") {
            CHECK(rejection(one_tensor_header("\"F32\"", "[2,3]", "[0,20]"), 20) ==
                  origin + ": tensor 't': data_offsets [0, 20] hold 20 bytes but F32 [2, 3] needs 24");
            CHECK(rejection(one_tensor_header("\"F16\"", "[]", "[0,4]"), 4).find("needs 2") != std::string::npos);
        }
        SUBCASE("overlapping tensors") {
            CHECK(rejection(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            12) == origin + ": tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
            CHECK(rejection(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                            8)
                      .find("overlap") != std::string::npos);
            CHECK(rejection(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                            8)
                      .find("overlap") != std::string::npos);
        }
        SUBCASE("a gap between tensors") {
            CHECK(rejection(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                            24) == origin + ": data section bytes [8, 16) belong to no tensor");
            CHECK(rejection(one_tensor_header("\"U8\"", "[4]", "[4,8]"), 8).find("bytes [0, 4) belong to no tensor") !=
                  std::string::npos);
        }
        SUBCASE("bytes after the last tensor") {
            CHECK(rejection(one_tensor_header("\"U8\"", "[4]", "[0,4]"), 6) ==
                  origin + ": data section has 6 bytes but the tensors end at byte 4");
            CHECK(rejection("{}", 1) == origin + ": data section has 1 bytes but the tensors end at byte 0");
        }
    }

    // docs/SECURITY.md: a weights file from the internet is untrusted. These files are crafted byte by byte.
    TEST_CASE("safetensors: untrusted files that claim more than they hold are refused before allocating") {
        // 2^40 F32 elements (4 TiB) claimed in a file of a few dozen bytes: refused by the layout check, as an io
        // error naming the data section, not attempted as a 4 TiB allocation (which would be out_of_memory or worse).
        const std::string huge = one_tensor_header("\"F32\"", "[1099511627776]", "[0,4398046511104]");
        CHECK(rejection(huge, 16).find("data_offsets [0, 4398046511104] exceed the data section (16 bytes)") !=
              std::string::npos);
        // Offsets inside the file but a shape far larger than them: the shape's size is checked against the offsets.
        CHECK(rejection(one_tensor_header("\"F32\"", "[1099511627776]", "[0,16]"), 16).find("hold 16") !=
              std::string::npos);
        // A shape whose byte count passes 2^64 (2^62 F32 elements) and one whose element count does.
        CHECK(rejection(one_tensor_header("\"F32\"", "[4611686018427387904]", "[0,16]"), 16)
                  .find("needs more than 2^64 bytes") != std::string::npos);
        CHECK(rejection(one_tensor_header("\"U8\"", "[4294967296,4294967296]", "[0,16]"), 16)
                  .find("more than 2^64 elements") != std::string::npos);
        // The same through read_safetensors on disk: the header is checked against the file size before any tensor
        // buffer exists.
        TempDir dir;
        const std::string path = dir.file("claims.safetensors");
        write_bytes(path, with_length_prefix(huge, 16));
        auto read = read_safetensors(path);
        REQUIRE_FALSE(read.ok());
        CHECK(read.error().code == ErrorCode::io);
        CHECK(read.error().message.find("exceed the data section") != std::string::npos);
        // A header length past the file is refused before the header is read (no 100 MiB buffer for a 12-byte file).
        std::vector<uint8_t> short_file = with_length_prefix("{}  ");
        const uint64_t claimed = 100ull << 20;
        for (size_t i = 0; i < 8; ++i) short_file[i] = static_cast<uint8_t>(claimed >> (8 * i));
        write_bytes(path, short_file);
        read = read_safetensors(path);
        REQUIRE_FALSE(read.ok());
        CHECK(read.error().message.find("header length 104857600 exceeds the 4 bytes after the length") !=
              std::string::npos);
    }

    TEST_CASE("safetensors: caps on tensor count and rank bound what a header can make the parser allocate") {
        // 100000 empty tensors parse; one more is refused by count.
        auto header_of = [](size_t count) {
            std::string header = "{";
            for (size_t i = 0; i < count; ++i)
                header +=
                    (i ? ",\"" : "\"") + std::to_string(i) + R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
            return header + "}";
        };
        auto at_cap = parse(with_length_prefix(header_of(100000)));
        REQUIRE_MESSAGE(at_cap.ok(), at_cap.error().message);
        CHECK(at_cap->size() == 100000);
        CHECK(rejection(header_of(100001)) == origin + ": header lists more than 100000 tensors");
        // Rank 64 parses; rank 65 is refused (a 100 MiB header of "1," would otherwise be 400 MiB of dimensions).
        auto shape_of_rank = [](size_t rank) {
            std::string shape = "[";
            for (size_t i = 0; i < rank; ++i) shape += i ? ",1" : "1";
            return shape + "]";
        };
        auto rank_64 = parse(with_length_prefix(one_tensor_header("\"U8\"", shape_of_rank(64), "[0,1]"), 1));
        REQUIRE_MESSAGE(rank_64.ok(), rank_64.error().message);
        CHECK(rank_64->at(0).shape.size() == 64);
        CHECK(rejection(one_tensor_header("\"U8\"", shape_of_rank(65), "[0,1]"), 1) ==
              origin + ": tensor 't': shape has more than 64 entries");
        CHECK(rejection(one_tensor_header("\"U8\"", "[1]", shape_of_rank(65)), 1) ==
              origin + ": tensor 't': data_offsets has more than 64 entries");
    }

    TEST_CASE("safetensors: malformed headers are rejected") {
        const std::string good_entry = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
        struct Case {
            const char* what;
            std::string header;
            const char* message_part;
        };
        const std::vector<Case> cases = {
            {"not an object: array", "[]", "not a JSON object (it starts with an array)"},
            {"not an object: string", "\"x\"", "not a JSON object"},
            {"not an object: number", "12", "not a JSON object"},
            {"unterminated object", "{", "expected a string key at header byte 1, found the end of the header"},
            {"key without value", R"({"t")", "expected ':'"},
            {"missing value", R"({"t":})", "expected a JSON value at header byte 5, found '}'"},
            {"trailing comma", R"({"t":)" + good_entry + ",}", "expected a string key"},
            {"leading comma", "{,}", "expected a string key"},
            {"single quotes", "{'t':1}", "expected a string key"},
            {"unquoted key", "{t:1}", "expected a string key"},
            {"garbage after the object", R"({"t":)" + good_entry + "} x", "expected the end of the header"},
            {"second object", R"({"t":)" + good_entry + "}{}", "expected the end of the header"},
            {"extra closing brace", R"({"t":)" + good_entry + "}}", "expected the end of the header"},
            {"unterminated string", R"({"t)", "is not terminated"},
            {"invalid escape", R"({"\x":1})", "valid escape character"},
            {"truncated unicode escape", R"({"\u00":1})", "a hex digit"},
            {"non-hex unicode escape", R"({"\u00zz":1})", "a hex digit"},
            {"lone low surrogate", R"({"\udc00":1})", "high surrogate"},
            {"high surrogate alone", R"({"\ud800":1})", "low surrogate"},
            {"high surrogate then non-surrogate", R"({"\ud800\u0041":1})", "low surrogate"},
            {"raw control character", "{\"a\x01\":1}", "raw control character"},
            {"raw newline in a string", "{\"a\nb\":1}", "raw control character"},
            {"invalid UTF-8", "{\"a\xff\":1}", "valid UTF-8"},
            {"overlong UTF-8", "{\"\xc0\xaf\":1}", "valid UTF-8"},
            {"UTF-8 surrogate", "{\"\xed\xa0\x80\":1}", "valid UTF-8"},
            {"truncated UTF-8", "{\"\xe2\x82\":1}", "valid UTF-8"},
            {"code point past U+10FFFF", "{\"\xf4\x90\x80\x80\":1}", "valid UTF-8"},
            {"NUL byte", std::string("{\0}", 3), "expected a string key"},
            {"NUL padding", std::string("{}\0\0", 4), "expected the end of the header"},
            {"tensor entry is a string", R"({"t":"x"})", "tensor 't': its entry must be an object"},
            {"tensor entry is an array", R"({"t":[]})",
             "must be an object with dtype, shape and data_offsets, got an array"},
            {"tensor entry is null", R"({"t":null})", "got null"},
            {"tensor entry is a bad literal", R"({"t":nul})", "expected a JSON value"},
            {"missing dtype", R"({"t":{"shape":[1],"data_offsets":[0,1]}})", "tensor 't': missing \"dtype\""},
            {"missing shape", R"({"t":{"dtype":"U8","data_offsets":[0,1]}})", "tensor 't': missing \"shape\""},
            {"missing data_offsets", R"({"t":{"dtype":"U8","shape":[1]}})", "tensor 't': missing \"data_offsets\""},
            {"dtype is a number", R"({"t":{"dtype":32,"shape":[1],"data_offsets":[0,1]}})",
             "tensor 't': dtype must be a string, got a number"},
            {"dtype lowercase", R"({"t":{"dtype":"u8","shape":[1],"data_offsets":[0,1]}})",
             "tensor 't': unknown dtype 'u8'"},
            {"dtype unknown", R"({"t":{"dtype":"F128","shape":[1],"data_offsets":[0,1]}})", "unknown dtype 'F128'"},
            {"dtype empty", R"({"t":{"dtype":"","shape":[1],"data_offsets":[0,1]}})", "unknown dtype ''"},
            {"dtype padded", R"({"t":{"dtype":"U8 ","shape":[1],"data_offsets":[0,1]}})", "unknown dtype 'U8 '"},
            {"dtype spelled out", R"({"t":{"dtype":"FLOAT","shape":[1],"data_offsets":[0,1]}})",
             "unknown dtype 'FLOAT'"},
            {"sub-byte dtype", R"({"t":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}})", "unknown dtype 'F4'"},
            {"shape is a string", R"({"t":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})",
             "tensor 't': shape must be an array of non-negative integers, got a string"},
            {"shape element is a string", R"({"t":{"dtype":"U8","shape":[1,"2"],"data_offsets":[0,1]}})",
             "tensor 't': shape[1] must be a non-negative integer, got a string"},
            {"shape element negative", R"({"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})",
             "tensor 't': shape[0] must be a non-negative integer, got -1"},
            {"shape element fractional", R"({"t":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "got 1.5"},
            {"shape element with exponent", R"({"t":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}})", "got 1e0"},
            {"shape element with leading zero", R"({"t":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}})",
             "expected ',' or ']'"},
            {"shape element with plus", R"({"t":{"dtype":"U8","shape":[+1],"data_offsets":[0,1]}})",
             "expected a JSON value at header byte 28, found '+'"},
            {"shape element hex", R"({"t":{"dtype":"U8","shape":[0x1],"data_offsets":[0,1]}})", "expected ',' or ']'"},
            {"shape element bare dot", R"({"t":{"dtype":"U8","shape":[1.],"data_offsets":[0,1]}})",
             "a digit after '.'"},
            {"shape element bare exponent", R"({"t":{"dtype":"U8","shape":[1e],"data_offsets":[0,1]}})",
             "a digit in the exponent"},
            {"shape element is true", R"({"t":{"dtype":"U8","shape":[true],"data_offsets":[0,1]}})", "got a boolean"},
            {"shape unterminated", R"({"t":{"dtype":"U8","shape":[1)", "expected ',' or ']'"},
            {"data_offsets with one value", R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0]}})",
             "tensor 't': data_offsets must be [begin, end], got 1 values"},
            {"data_offsets with three values", R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})",
             "got 3 values"},
            {"data_offsets is an object", R"({"t":{"dtype":"U8","shape":[1],"data_offsets":{}}})", "got an object"},
            {"duplicate tensor names", R"({"t":)" + good_entry + R"(,"t":)" + good_entry + "}",
             "duplicate tensor name 't'"},
            {"duplicate dtype key", R"({"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
             "tensor 't': duplicate key \"dtype\""},
            {"duplicate shape key", R"({"t":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}})",
             "duplicate key \"shape\""},
            {"metadata twice", R"({"__metadata__":{},"__metadata__":{}})", "\"__metadata__\" twice"},
            {"metadata is an array", R"({"__metadata__":[]})",
             "\"__metadata__\" must be an object of strings, got an array"},
            {"metadata value is a number", R"({"__metadata__":{"a":1}})",
             "\"__metadata__\" entry 'a' must be a string, got a number"},
            {"metadata value is an object", R"({"__metadata__":{"a":{}}})", "got an object"},
            {"metadata duplicate key", R"({"__metadata__":{"a":"x","a":"y"}})", "has the key 'a' twice"},
            {"nesting too deep in an ignored key",
             R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":)" + std::string(10000, '[') +
                 std::string(10000, ']') + "}}",
             "nests deeper than 64 levels"},
            {"bad literal in an ignored key", R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":tru}})",
             "expected a JSON value"},
            {"bad number in an ignored key", R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":-}})",
             "a digit"},
            {"wrong type reports the syntax error inside first",
             R"({"t":{"dtype":[1,],"shape":[1],"data_offsets":[0,1]}})", "not valid JSON"},
        };
        for (const Case& c : cases) {
            SUBCASE(c.what) {
                CAPTURE(c.header);
                const std::string message = rejection(c.header, 1);
                CAPTURE(message);
                CHECK(message.find(c.message_part) != std::string::npos);
            }
        }
    }

    TEST_CASE("safetensors: tensor names with escapes and non-ASCII text round-trip") {
        const std::vector<std::string> names = {"a\"b\\c",  "line\nbreak\ttab", std::string("nul\0inside", 10),
                                                "\x01\x1f", "caf\xc3\xa9",      "\xf0\x9f\x98\x80",
                                                "",         "slash/and\x7f"};
        std::vector<Tensor> tensors;
        uint32_t seed = 100;
        for (const std::string& name : names) tensors.push_back(make_tensor(name, DType::u8, {2}, seed++));
        auto bytes = serialize_safetensors(tensors);
        REQUIRE(bytes.ok());
        auto parsed = parse(bytes.value());
        REQUIRE(parsed.ok());
        check_same(parsed.value(), tensors);
    }

    TEST_CASE("safetensors: messages quote names safely on one line") {
        const std::string message =
            rejection("{\"bad\\nname\\u0000\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,1]}}", 1);
        CHECK(message == origin + ": tensor 'bad\\x0aname\\x00': unknown dtype 'X'");
        const std::string long_name(500, 'n');
        const std::string long_message =
            rejection("{\"" + long_name + "\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,1]}}", 1);
        CHECK(long_message.size() < 200);
        CHECK(long_message.find("...") != std::string::npos);
    }

    TEST_CASE("safetensors: read_safetensors reports file problems") {
        TempDir dir;
        SUBCASE("missing file") {
            const std::string path = dir.file("missing.safetensors");
            auto read = read_safetensors(path);
            REQUIRE_FALSE(read.ok());
            CHECK(read.error().code == ErrorCode::io);
            CHECK(read.error().message.rfind(path + ": cannot open", 0) == 0);
        }
        SUBCASE("a directory") {
            auto read = read_safetensors(dir.path.string());
            REQUIRE_FALSE(read.ok());
            CHECK(read.error().message == dir.path.string() + ": not a regular file");
        }
        SUBCASE("a device that never ends") {
            if (std::filesystem::exists("/dev/zero")) {
                auto read = read_safetensors("/dev/zero");
                REQUIRE_FALSE(read.ok());
                CHECK(read.error().message == "/dev/zero: not a regular file");
            }
        }
        SUBCASE("an empty file") {
            const std::string path = dir.file("empty.safetensors");
            write_bytes(path, {});
            auto read = read_safetensors(path);
            REQUIRE_FALSE(read.ok());
            CHECK(read.error().message == path + ": file is 0 bytes, shorter than the 8-byte header length");
        }
        SUBCASE("a valid file") {
            const std::string path = dir.file("valid.safetensors");
            write_bytes(path, small_valid_file());
            auto read = read_safetensors(path);
            REQUIRE(read.ok());
            CHECK(read->size() == 3);
        }
    }

    TEST_CASE("safetensors: writer rejects inconsistent tensors") {
        auto writer_error = [](const std::vector<Tensor>& tensors) {
            auto bytes = serialize_safetensors(tensors);
            REQUIRE_FALSE(bytes.ok());
            CHECK(bytes.error().code == ErrorCode::invalid_argument);
            CHECK(bytes.error().message.find('\n') == std::string::npos);
            return bytes.error().message;
        };
        CHECK(writer_error({make_f32_tensor("a", {2}, {1, 2}), make_f32_tensor("a", {1}, {3})})
                  .find("duplicate tensor name 'a'") != std::string::npos);
        CHECK(writer_error({make_f32_tensor("a", {2, 3}, {1, 2})})
                  .find("tensor 'a': F32 [2, 3] needs 24 bytes, data has 8") != std::string::npos);
        CHECK(writer_error({make_f32_tensor("__metadata__", {1}, {1})}).find("reserved") != std::string::npos);
        CHECK(writer_error({make_f32_tensor("bad\xff", {1}, {1})}).find("not valid UTF-8") != std::string::npos);
        CHECK(writer_error({Tensor{"huge", DType::f64, {1ull << 62}, {}}}).find("more than 2^64 bytes") !=
              std::string::npos);

        const std::string path = "/nonexistent_vkmha_dir/x.safetensors";
        auto status = write_safetensors(path, {make_f32_tensor("a", {1}, {1})});
        REQUIRE_FALSE(status.ok());
        CHECK(status.error().code == ErrorCode::io);
        CHECK(status.error().message.rfind(path + ": cannot create", 0) == 0);
    }

    TEST_CASE("safetensors: to_float and to_bool_bytes convert and check dtypes") {
        const std::vector<float> values = {0.5f, -1.25f, 3.0f};
        CHECK(to_float(make_f32_tensor("f", {3}, values), origin).value() == values);

        Tensor half{"h", DType::f16, {3}, {}};
        Tensor bf{"b", DType::bf16, {3}, {}};
        for (const float v : values) {
            const uint16_t h = float_to_half(v), b = float_to_bf16(v);
            half.data.insert(half.data.end(), {static_cast<uint8_t>(h), static_cast<uint8_t>(h >> 8)});
            bf.data.insert(bf.data.end(), {static_cast<uint8_t>(b), static_cast<uint8_t>(b >> 8)});
        }
        CHECK(to_float(half, origin).value() == values);
        CHECK(to_float(bf, origin).value() == values);

        auto not_float = to_float(Tensor{"i", DType::i32, {1}, {0, 0, 0, 0}}, origin);
        REQUIRE_FALSE(not_float.ok());
        CHECK(not_float.error().code == ErrorCode::io);
        CHECK(not_float.error().message ==
              origin + ": tensor 'i': dtype I32 is not a float type (expected F32, F16 or BF16)");

        auto inconsistent = to_float(Tensor{"f", DType::f32, {2}, {0, 0, 0, 0}}, origin);
        REQUIRE_FALSE(inconsistent.ok());
        CHECK(inconsistent.error().code == ErrorCode::invalid_argument);

        CHECK(to_bool_bytes(Tensor{"m", DType::boolean, {4}, {0, 1, 2, 255}}, origin).value() ==
              std::vector<uint8_t>{0, 1, 1, 1});
        CHECK(to_bool_bytes(Tensor{"m", DType::u8, {2, 1}, {7, 0}}, origin).value() == std::vector<uint8_t>{1, 0});
        auto not_bool = to_bool_bytes(make_f32_tensor("f", {1}, {1}), origin);
        REQUIRE_FALSE(not_bool.ok());
        CHECK(not_bool.error().message.find("dtype F32 is not a boolean type") != std::string::npos);
    }

#ifdef VKMHA_FIXTURE_DIR
    TEST_CASE("safetensors: reads every fixture file (written by an independent Python writer) losslessly") {
        int files = 0;
        for (const auto& entry : std::filesystem::directory_iterator(VKMHA_FIXTURE_DIR)) {
            if (entry.path().extension() != ".safetensors") continue;
            const std::string path = entry.path().string();
            CAPTURE(path);
            auto read = read_safetensors(path);
            REQUIRE(read.ok());
            CHECK_FALSE(read->empty());
            for (const Tensor& tensor : read.value())
                if (tensor.dtype == DType::f32 || tensor.dtype == DType::f16 || tensor.dtype == DType::bf16)
                    CHECK(to_float(tensor, path).ok());
            auto bytes = serialize_safetensors(read.value());
            REQUIRE(bytes.ok());
            auto again = parse(bytes.value());
            REQUIRE(again.ok());
            check_same(again.value(), read.value());
            ++files;
        }
        CHECK(files > 0);
    }
#endif

    TEST_CASE("safetensors: find_tensor and shape_to_string") {
        const std::vector<Tensor> tensors = {make_f32_tensor("a", {1}, {1}), make_f32_tensor("b", {1}, {2})};
        REQUIRE(find_tensor(tensors, "b") != nullptr);
        CHECK(find_tensor(tensors, "b")->name == "b");
        CHECK(find_tensor(tensors, "c") == nullptr);
        CHECK(shape_to_string({}) == "[]");
        CHECK(shape_to_string({3072, 1024}) == "[3072, 1024]");
        CHECK(shape_to_string(std::vector<uint64_t>(40, 1)).find("... (40 dims)") != std::string::npos);
    }

} // TEST_SUITE("safetensors")
