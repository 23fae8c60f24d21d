// Tests for io::map_attention_weights: both naming schemes, GQA, dtypes, and every rejection path.
#include "io/half.h"
#include "io/safetensors.h"
#include "io/weight_map.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace vkmha;
using namespace vkmha::io;

namespace {

const std::string file = "weights.safetensors";

uint64_t product(const std::vector<uint64_t>& shape) {
    uint64_t count = 1;
    for (const uint64_t dim : shape) count *= dim;
    return count;
}

// base, base + 1, ...: every element of every tensor is distinct, so a misplaced split shows.
std::vector<float> counting(uint64_t count, float base) {
    std::vector<float> values(static_cast<size_t>(count));
    for (size_t i = 0; i < values.size(); ++i) values[i] = base + static_cast<float>(i);
    return values;
}

Tensor counting_tensor(std::string name, std::vector<uint64_t> shape, float base) {
    const uint64_t count = product(shape);
    return make_f32_tensor(std::move(name), std::move(shape), counting(count, base));
}

std::vector<float> slice(const std::vector<float>& values, size_t first, size_t count) {
    return std::vector<float>(values.begin() + static_cast<std::ptrdiff_t>(first),
                              values.begin() + static_cast<std::ptrdiff_t>(first + count));
}

// The same values as F16 or BF16 (the test values are small integers, exact in both).
Tensor converted(const Tensor& f32, DType dtype) {
    const std::vector<float> values = to_float(f32, file).value();
    Tensor out{f32.name, dtype, f32.shape, {}};
    for (const float v : values) {
        const uint16_t bits = dtype == DType::f16 ? float_to_half(v) : float_to_bf16(v);
        out.data.push_back(static_cast<uint8_t>(bits));
        out.data.push_back(static_cast<uint8_t>(bits >> 8));
    }
    return out;
}

void remove_tensor(std::vector<Tensor>& tensors, std::string_view name) {
    std::erase_if(tensors, [&](const Tensor& t) { return t.name == name; });
}

void replace_tensor(std::vector<Tensor>& tensors, Tensor replacement) {
    for (Tensor& t : tensors)
        if (t.name == replacement.name) t = std::move(replacement);
}

std::string rejection(const std::vector<Tensor>& tensors, uint32_t num_heads, uint32_t num_kv_heads, ErrorCode code) {
    auto result = map_attention_weights(tensors, num_heads, num_kv_heads, file);
    REQUIRE_FALSE(result.ok());
    const Error& error = result.error();
    CAPTURE(error.message);
    CHECK(error.code == code);
    CHECK(error.message.rfind(file + ": ", 0) == 0);
    CHECK(error.message.find('\n') == std::string::npos);
    return error.message;
}

// E = 8: in_proj_weight [24, 8], in_proj_bias [24], out_proj.weight [8, 8], out_proj.bias [8].
std::vector<Tensor> torch_packed(bool bias) {
    std::vector<Tensor> tensors = {counting_tensor("in_proj_weight", {24, 8}, 0),
                                   counting_tensor("out_proj.weight", {8, 8}, 2000)};
    if (bias) {
        tensors.push_back(counting_tensor("in_proj_bias", {24}, 1000));
        tensors.push_back(counting_tensor("out_proj.bias", {8}, 3000));
    }
    return tensors;
}

// E = 8, kdim = 6, vdim = 4.
std::vector<Tensor> torch_separate(bool bias) {
    std::vector<Tensor> tensors = {
        counting_tensor("q_proj_weight", {8, 8}, 0), counting_tensor("k_proj_weight", {8, 6}, 100),
        counting_tensor("v_proj_weight", {8, 4}, 200), counting_tensor("out_proj.weight", {8, 8}, 2000)};
    if (bias) {
        tensors.push_back(counting_tensor("in_proj_bias", {24}, 1000));
        tensors.push_back(counting_tensor("out_proj.bias", {8}, 3000));
    }
    return tensors;
}

// E = 16, D = 16 / num_heads, key/value rows kv_heads * D.
std::vector<Tensor> llama(uint64_t kv_rows, bool bias) {
    std::vector<Tensor> tensors = {
        counting_tensor("q_proj.weight", {16, 16}, 0), counting_tensor("k_proj.weight", {kv_rows, 16}, 300),
        counting_tensor("v_proj.weight", {kv_rows, 16}, 600), counting_tensor("o_proj.weight", {16, 16}, 900)};
    if (bias) {
        tensors.push_back(counting_tensor("q_proj.bias", {16}, 1200));
        tensors.push_back(counting_tensor("k_proj.bias", {kv_rows}, 1300));
        tensors.push_back(counting_tensor("v_proj.bias", {kv_rows}, 1400));
        tensors.push_back(counting_tensor("o_proj.bias", {16}, 1500));
    }
    return tensors;
}

} // namespace

TEST_SUITE("weight_map") {

    TEST_CASE("weight_map: PyTorch packed in_proj_weight is split into q, k, v") {
        for (const bool bias : {true, false}) {
            CAPTURE(bias);
            for (const uint32_t kv_heads : {0u, 2u}) {
                auto result = map_attention_weights(torch_packed(bias), 2, kv_heads, file);
                REQUIRE(result.ok());
                const AttentionConfig& c = result->config;
                CHECK(c.embed_dim == 8);
                CHECK(c.num_heads == 2);
                CHECK(c.num_kv_heads == 2);
                CHECK(c.kdim == 8);
                CHECK(c.vdim == 8);
                const AttentionWeights& w = result->weights;
                const std::vector<float> in_proj = counting(192, 0);
                CHECK(w.wq == slice(in_proj, 0, 64));
                CHECK(w.wk == slice(in_proj, 64, 64));
                CHECK(w.wv == slice(in_proj, 128, 64));
                CHECK(w.wo == counting(64, 2000));
                if (bias) {
                    CHECK(w.bq == counting(8, 1000));
                    CHECK(w.bk == counting(8, 1008));
                    CHECK(w.bv == counting(8, 1016));
                    CHECK(w.bo == counting(8, 3000));
                } else {
                    CHECK(w.bq.empty());
                    CHECK(w.bk.empty());
                    CHECK(w.bv.empty());
                    CHECK(w.bo.empty());
                }
            }
        }
    }

    TEST_CASE("weight_map: PyTorch separate projections keep kdim and vdim") {
        for (const bool bias : {true, false}) {
            CAPTURE(bias);
            auto result = map_attention_weights(torch_separate(bias), 4, 0, file);
            REQUIRE(result.ok());
            const AttentionConfig& c = result->config;
            CHECK(c.embed_dim == 8);
            CHECK(c.num_heads == 4);
            CHECK(c.num_kv_heads == 4);
            CHECK(c.kdim == 6);
            CHECK(c.vdim == 4);
            const AttentionWeights& w = result->weights;
            CHECK(w.wq == counting(64, 0));
            CHECK(w.wk == counting(48, 100));
            CHECK(w.wv == counting(32, 200));
            CHECK(w.wo == counting(64, 2000));
            CHECK(w.bq == (bias ? counting(8, 1000) : std::vector<float>{}));
            CHECK(w.bk == (bias ? counting(8, 1008) : std::vector<float>{}));
            CHECK(w.bv == (bias ? counting(8, 1016) : std::vector<float>{}));
            CHECK(w.bo == (bias ? counting(8, 3000) : std::vector<float>{}));
        }
    }

    TEST_CASE("weight_map: Llama projections with MHA, GQA and MQA") {
        struct Sweep {
            const char* name;
            uint32_t num_heads, kv_heads;
        };
        for (const Sweep s : {Sweep{"MHA", 4, 4}, Sweep{"GQA", 4, 2}, Sweep{"MQA", 4, 1}, Sweep{"GQA 8 heads", 8, 2}}) {
            SUBCASE(s.name) {
                const uint32_t head_dim = 16 / s.num_heads;
                const uint64_t kv_rows = uint64_t{s.kv_heads} * head_dim;
                for (const bool bias : {true, false}) {
                    for (const uint32_t requested : {0u, s.kv_heads}) { // 0: inferred from k_proj.weight
                        CAPTURE(bias);
                        CAPTURE(requested);
                        auto result = map_attention_weights(llama(kv_rows, bias), s.num_heads, requested, file);
                        REQUIRE(result.ok());
                        const AttentionConfig& c = result->config;
                        CHECK(c.embed_dim == 16);
                        CHECK(c.num_heads == s.num_heads);
                        CHECK(c.num_kv_heads == s.kv_heads);
                        CHECK(c.kdim == 16);
                        CHECK(c.vdim == 16);
                        CHECK(c.kv_width() == kv_rows);
                        const AttentionWeights& w = result->weights;
                        CHECK(w.wq == counting(256, 0));
                        CHECK(w.wk == counting(kv_rows * 16, 300));
                        CHECK(w.wv == counting(kv_rows * 16, 600));
                        CHECK(w.wo == counting(256, 900));
                        CHECK(w.bq == (bias ? counting(16, 1200) : std::vector<float>{}));
                        CHECK(w.bk == (bias ? counting(kv_rows, 1300) : std::vector<float>{}));
                        CHECK(w.bv == (bias ? counting(kv_rows, 1400) : std::vector<float>{}));
                        CHECK(w.bo == (bias ? counting(16, 1500) : std::vector<float>{}));
                    }
                }
            }
        }
    }

    TEST_CASE("weight_map: Llama layers with H*D != E take the head dim from q_proj.weight (Gemma, Qwen3)") {
        // E = 16, H = 4, D = 8 (H*D = 32), G = 2.
        const std::vector<Tensor> tensors = {
            counting_tensor("q_proj.weight", {32, 16}, 0), counting_tensor("k_proj.weight", {16, 16}, 300),
            counting_tensor("v_proj.weight", {16, 16}, 600), counting_tensor("o_proj.weight", {16, 32}, 900),
            counting_tensor("q_proj.bias", {32}, 1200)};
        std::vector<Tensor> with_biases = tensors;
        with_biases.push_back(counting_tensor("k_proj.bias", {16}, 1300));
        with_biases.push_back(counting_tensor("v_proj.bias", {16}, 1400));
        auto result = map_attention_weights(with_biases, 4, 0, file);
        REQUIRE_MESSAGE(result.ok(), result.error().message);
        const AttentionConfig& c = result->config;
        CHECK(c.embed_dim == 16);
        CHECK(c.head_dim() == 8);
        CHECK(c.q_width() == 32);
        CHECK(c.num_kv_heads == 2);
        CHECK(result->weights.wq == counting(32 * 16, 0));
        CHECK(result->weights.wo == counting(16 * 32, 900));
        CHECK(result->weights.bq == counting(32, 1200));
    }

    TEST_CASE("weight_map: F16 and BF16 weights convert to float") {
        // Small integers, exact in both formats: 0..255 fits BF16's 8-bit significand.
        auto small = [](std::string name, std::vector<uint64_t> shape) {
            std::vector<float> values(static_cast<size_t>(product(shape)));
            for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(static_cast<int>(i % 200) - 100);
            return make_f32_tensor(std::move(name), std::move(shape), values);
        };
        const std::vector<Tensor> reference = {small("q_proj.weight", {16, 16}), small("k_proj.weight", {8, 16}),
                                               small("v_proj.weight", {8, 16}), small("o_proj.weight", {16, 16}),
                                               small("k_proj.bias", {8})};
        auto expected = map_attention_weights(reference, 4, 0, file);
        REQUIRE(expected.ok());
        for (const DType dtype : {DType::f16, DType::bf16}) {
            SUBCASE(std::string(dtype_name(dtype)).c_str()) {
                std::vector<Tensor> tensors;
                for (const Tensor& t : reference) tensors.push_back(converted(t, dtype));
                // A mixed file: one tensor stays F32.
                tensors[3] = reference[3];
                auto result = map_attention_weights(tensors, 4, 0, file);
                REQUIRE(result.ok());
                CHECK(result->config.num_kv_heads == 2);
                CHECK(result->weights.wq == expected->weights.wq);
                CHECK(result->weights.wk == expected->weights.wk);
                CHECK(result->weights.wv == expected->weights.wv);
                CHECK(result->weights.wo == expected->weights.wo);
                CHECK(result->weights.bk == expected->weights.bk);
                CHECK(result->weights.bq.empty());
            }
        }
    }

    TEST_CASE("weight_map: tensors read back from a safetensors file map as written") {
        std::vector<Tensor> tensors = torch_packed(true);
        tensors.push_back(counting_tensor("unrelated.running_mean", {3}, 0)); // other tensors are ignored
        auto bytes = serialize_safetensors(tensors);
        REQUIRE(bytes.ok());
        auto parsed = parse_safetensors(bytes->data(), bytes->size(), file);
        REQUIRE(parsed.ok());
        auto result = map_attention_weights(parsed.value(), 2, 0, file);
        REQUIRE(result.ok());
        CHECK(result->weights.wv == slice(counting(192, 0), 128, 64));
        CHECK(result->weights.bo == counting(8, 3000));
    }

    TEST_CASE("weight_map: head counts must fit the weights") {
        SUBCASE("E % H != 0, packed") {
            CHECK(rejection(torch_packed(true), 3, 0, ErrorCode::invalid_argument) ==
                  file + ": embed_dim 8 (from in_proj_weight columns) is not divisible by num_heads 3");
        }
        SUBCASE("E % H != 0, separate") {
            CHECK(rejection(torch_separate(false), 3, 0, ErrorCode::invalid_argument).find("embed_dim 8") !=
                  std::string::npos);
        }
        SUBCASE("E % H != 0, Llama") {
            CHECK(rejection(llama(16, false), 5, 0, ErrorCode::invalid_argument) ==
                  file + ": q_proj.weight rows 16 (num_heads * head_dim) are not divisible by num_heads 5");
        }
        SUBCASE("num_heads 0") {
            CHECK(rejection(torch_packed(true), 0, 0, ErrorCode::invalid_argument) ==
                  file + ": num_heads must be at least 1");
        }
        SUBCASE("PyTorch weights have no GQA") {
            CHECK(rejection(torch_packed(true), 2, 1, ErrorCode::invalid_argument) ==
                  file + ": num_kv_heads 1 != num_heads 2: PyTorch nn.MultiheadAttention weights have no grouped-query "
                         "attention");
            CHECK(rejection(torch_separate(true), 4, 2, ErrorCode::invalid_argument)
                      .find("num_kv_heads 2 != num_heads 4") != std::string::npos);
        }
        SUBCASE("H % G != 0, given") {
            CHECK(rejection(llama(12, false), 4, 3, ErrorCode::invalid_argument) ==
                  file + ": num_heads 4 is not divisible by num_kv_heads 3");
        }
        SUBCASE("given G does not match k_proj.weight") {
            CHECK(rejection(llama(8, false), 4, 4, ErrorCode::io) ==
                  file + ": tensor 'k_proj.weight': expected shape [16, 16] [G*D, E], got [8, 16]");
        }
        SUBCASE("inferred G: rows not a multiple of head_dim") {
            CHECK(rejection(llama(6, false), 4, 0, ErrorCode::io)
                      .find("tensor 'k_proj.weight' has 6 rows, which is not num_kv_heads * head_dim 4") !=
                  std::string::npos);
        }
        SUBCASE("inferred G does not divide H") {
            CHECK(rejection(llama(12, false), 4, 0, ErrorCode::io).find("has 12 rows") != std::string::npos);
        }
        SUBCASE("inferred G larger than H") {
            CHECK(rejection(llama(32, false), 4, 0, ErrorCode::io).find("has 32 rows") != std::string::npos);
        }
    }

    TEST_CASE("weight_map: every shape is checked") {
        SUBCASE("out_proj.weight") {
            std::vector<Tensor> tensors = torch_packed(true);
            replace_tensor(tensors, counting_tensor("out_proj.weight", {8, 7}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": tensor 'out_proj.weight': expected shape [8, 8] [E, E], got [8, 7]");
        }
        SUBCASE("in_proj_weight rows") {
            std::vector<Tensor> tensors = torch_packed(true);
            replace_tensor(tensors, counting_tensor("in_proj_weight", {25, 8}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": tensor 'in_proj_weight': expected shape [24, 8] [3E, E], got [25, 8]");
        }
        SUBCASE("in_proj_weight rank") {
            std::vector<Tensor> tensors = torch_packed(true);
            replace_tensor(tensors, counting_tensor("in_proj_weight", {24, 8, 1}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": tensor 'in_proj_weight': expected shape [3E, E], got [24, 8, 1]");
        }
        SUBCASE("in_proj_weight empty") {
            std::vector<Tensor> tensors = torch_packed(true);
            replace_tensor(tensors, counting_tensor("in_proj_weight", {0, 0}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io).find("E (columns) 0 is out of range") != std::string::npos);
        }
        SUBCASE("in_proj_bias") {
            std::vector<Tensor> tensors = torch_packed(true);
            replace_tensor(tensors, counting_tensor("in_proj_bias", {23}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": tensor 'in_proj_bias': expected shape [24] [3E], got [23]");
        }
        SUBCASE("out_proj.bias") {
            std::vector<Tensor> tensors = torch_packed(true);
            replace_tensor(tensors, counting_tensor("out_proj.bias", {8, 1}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io)
                      .find("tensor 'out_proj.bias': expected shape [8] [E], got [8, 1]") != std::string::npos);
        }
        SUBCASE("separate q_proj_weight not square") {
            std::vector<Tensor> tensors = torch_separate(false);
            replace_tensor(tensors, counting_tensor("q_proj_weight", {8, 6}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": tensor 'q_proj_weight': expected shape [8, 8] [E, E], got [8, 6]");
        }
        SUBCASE("separate k_proj_weight rows") {
            std::vector<Tensor> tensors = torch_separate(false);
            replace_tensor(tensors, counting_tensor("k_proj_weight", {7, 6}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": tensor 'k_proj_weight': expected shape [8, 6] [E, kdim], got [7, 6]");
        }
        SUBCASE("Llama o_proj.weight must be [E, H*D] when H*D != E") {
            std::vector<Tensor> tensors = llama(16, false);
            replace_tensor(tensors, counting_tensor("q_proj.weight", {32, 16}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'o_proj.weight': expected shape [16, 32] [E, H*D], got [16, 16]");
        }
        SUBCASE("Llama v_proj.weight") {
            std::vector<Tensor> tensors = llama(8, false);
            replace_tensor(tensors, counting_tensor("v_proj.weight", {8, 15}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'v_proj.weight': expected shape [8, 16] [G*D, E], got [8, 15]");
        }
        SUBCASE("Llama o_proj.bias") {
            std::vector<Tensor> tensors = llama(8, true);
            replace_tensor(tensors, counting_tensor("o_proj.bias", {15}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'o_proj.bias': expected shape [16] [E], got [15]");
        }
        SUBCASE("Llama k_proj.bias") {
            std::vector<Tensor> tensors = llama(8, true);
            replace_tensor(tensors, counting_tensor("k_proj.bias", {16}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'k_proj.bias': expected shape [8] [G*D], got [16]");
        }
        SUBCASE("non-float dtype") {
            std::vector<Tensor> tensors = torch_packed(false);
            replace_tensor(tensors, Tensor{"out_proj.weight", DType::i32, {8, 8}, std::vector<uint8_t>(256)});
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": tensor 'out_proj.weight': dtype I32 is not a float type (expected F32, F16 or BF16)");
        }
    }

    TEST_CASE("weight_map: missing tensors name the scheme") {
        SUBCASE("packed without out_proj.weight") {
            std::vector<Tensor> tensors = torch_packed(true);
            remove_tensor(tensors, "out_proj.weight");
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": PyTorch nn.MultiheadAttention (packed in_proj_weight) weights: missing 'out_proj.weight' "
                         "[E, E] = [8, 8]");
        }
        SUBCASE("separate without v_proj_weight") {
            std::vector<Tensor> tensors = torch_separate(true);
            remove_tensor(tensors, "v_proj_weight");
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file +
                      ": PyTorch nn.MultiheadAttention (separate q/k/v_proj_weight) weights: missing 'v_proj_weight' "
                      "[E, vdim]");
        }
        SUBCASE("PyTorch output projection only") {
            std::vector<Tensor> tensors = torch_packed(true);
            remove_tensor(tensors, "in_proj_weight");
            CHECK(rejection(tensors, 2, 0, ErrorCode::io).find("missing 'in_proj_weight' [3E, E]") !=
                  std::string::npos);
        }
        for (const char* name : {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"}) {
            SUBCASE(name) {
                std::vector<Tensor> tensors = llama(8, true);
                remove_tensor(tensors, name);
                const std::string message = rejection(tensors, 4, 2, ErrorCode::io);
                CHECK(message.find(std::string("Hugging Face Llama weights: missing '") + name + "'") !=
                      std::string::npos);
            }
        }
    }

    TEST_CASE("weight_map: unsupported, unrecognised and ambiguous names") {
        SUBCASE("bias_k / bias_v") {
            for (const char* name : {"bias_k", "bias_v"}) {
                std::vector<Tensor> tensors = torch_packed(true);
                tensors.push_back(counting_tensor(name, {1, 1, 8}, 0));
                CHECK(rejection(tensors, 2, 0, ErrorCode::unsupported) ==
                      file + ": tensor '" + name + "': nn.MultiheadAttention(add_bias_kv=True) is not supported");
            }
        }
        SUBCASE("no recognised names: the names found are listed, shortened") {
            std::vector<Tensor> tensors;
            for (int layer = 0; layer < 3; ++layer)
                for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
                    tensors.push_back(counting_tensor(
                        "model.layers." + std::to_string(layer) + ".self_attn." + proj + ".weight", {1}, 0));
            const std::string message = rejection(tensors, 4, 0, ErrorCode::io);
            CHECK(message.find("no attention weights recognised") != std::string::npos);
            CHECK(message.find("found 'model.layers.0.self_attn.k_proj.weight'") != std::string::npos);
            CHECK(message.find("and 4 more") != std::string::npos);
        }
        SUBCASE("no tensors at all") {
            CHECK(rejection({}, 4, 0, ErrorCode::io).find("the file has no tensors") != std::string::npos);
        }
        SUBCASE("both schemes present") {
            std::vector<Tensor> tensors = torch_packed(true);
            tensors.push_back(counting_tensor("q_proj.weight", {8, 8}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io)
                      .find("both PyTorch ('in_proj_weight') and Llama ('q_proj.weight')") != std::string::npos);
        }
        SUBCASE("packed and separate PyTorch projections present") {
            std::vector<Tensor> tensors = torch_packed(true);
            tensors.push_back(counting_tensor("k_proj_weight", {8, 8}, 0));
            CHECK(rejection(tensors, 2, 0, ErrorCode::io) ==
                  file + ": both 'in_proj_weight' and 'k_proj_weight' are present; cannot tell packed from separate "
                         "projections");
        }
    }

    TEST_CASE("weight_map: q_norm.weight / k_norm.weight turn QK-norm on and sinks turn sinks on, under every scheme") {
        struct Scheme {
            const char* name;
            std::vector<Tensor> tensors;
            uint32_t heads, head_dim;
        };
        // packed E 8 / H 2, separate E 8 / H 4, Llama E 16 / H 4 / G 2: D 4, 2 and 4.
        const Scheme schemes[] = {{"PyTorch packed", torch_packed(true), 2, 4},
                                  {"PyTorch separate", torch_separate(false), 4, 2},
                                  {"Llama GQA", llama(8, true), 4, 4}};
        for (const Scheme& s : schemes) {
            for (const DType dtype : {DType::f32, DType::f16, DType::bf16}) {
                CAPTURE(s.name);
                CAPTURE(dtype_name(dtype));
                auto without = map_attention_weights(s.tensors, s.heads, 0, file);
                REQUIRE(without.ok());
                CHECK_FALSE(without->config.qk_norm);
                CHECK_FALSE(without->config.sinks);
                CHECK(without->weights.q_norm.empty());
                CHECK(without->weights.k_norm.empty());
                CHECK(without->weights.sinks.empty());

                std::vector<Tensor> tensors = s.tensors;
                auto typed = [&](Tensor t) { return dtype == DType::f32 ? t : converted(t, dtype); };
                tensors.push_back(typed(counting_tensor("q_norm.weight", {s.head_dim}, 10)));
                tensors.push_back(counting_tensor("k_norm.weight", {s.head_dim}, 20)); // F32 beside the others
                tensors.push_back(typed(counting_tensor("sinks", {s.heads}, -3)));
                auto with = map_attention_weights(tensors, s.heads, 0, file);
                REQUIRE_MESSAGE(with.ok(), with.error().message);
                CHECK(with->config.qk_norm);
                CHECK(with->config.sinks);
                CHECK(with->config.norm_eps == AttentionConfig{}.norm_eps); // the weights do not carry an epsilon
                CHECK(with->weights.q_norm == counting(s.head_dim, 10));
                CHECK(with->weights.k_norm == counting(s.head_dim, 20));
                CHECK(with->weights.sinks == counting(s.heads, -3));
                CHECK(with->weights.wq == without->weights.wq);
            }
        }
        SUBCASE("sinks alone, without QK-norm") {
            std::vector<Tensor> tensors = llama(4, false);
            tensors.push_back(counting_tensor("sinks", {4}, 0));
            auto result = map_attention_weights(tensors, 4, 0, file);
            REQUIRE(result.ok());
            CHECK(result->config.sinks);
            CHECK_FALSE(result->config.qk_norm);
        }
    }

    TEST_CASE("weight_map: QK-norm needs both norms of [D], sinks [H], refusals name the tensor and both shapes") {
        std::vector<Tensor> tensors = llama(8, false); // E 16, H 4: D 4
        SUBCASE("q_norm.weight without k_norm.weight") {
            tensors.push_back(counting_tensor("q_norm.weight", {4}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'q_norm.weight' is given without 'k_norm.weight' (QK-norm needs both, [D] each)");
        }
        SUBCASE("k_norm.weight without q_norm.weight") {
            tensors.push_back(counting_tensor("k_norm.weight", {4}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io).find("'q_norm.weight'") != std::string::npos);
        }
        SUBCASE("q_norm.weight over the whole width [E] (OLMo-2 style), not [D]") {
            tensors.push_back(counting_tensor("q_norm.weight", {16}, 0));
            tensors.push_back(counting_tensor("k_norm.weight", {4}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'q_norm.weight': expected shape [4] [D], got [16]");
        }
        SUBCASE("k_norm.weight of rank 2") {
            tensors.push_back(counting_tensor("q_norm.weight", {4}, 0));
            tensors.push_back(counting_tensor("k_norm.weight", {1, 4}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'k_norm.weight': expected shape [4] [D], got [1, 4]");
        }
        SUBCASE("sinks [H + 1]") {
            tensors.push_back(counting_tensor("sinks", {5}, 0));
            CHECK(rejection(tensors, 4, 0, ErrorCode::io) ==
                  file + ": tensor 'sinks': expected shape [4] [H], got [5]");
        }
        SUBCASE("sinks of dtype I32") {
            tensors.push_back(Tensor{"sinks", DType::i32, {4}, std::vector<uint8_t>(16)});
            CHECK(rejection(tensors, 4, 0, ErrorCode::io).find("'sinks'") != std::string::npos);
        }
    }

#ifdef VKMHA_FIXTURE_DIR
    TEST_CASE("weight_map: maps every fixture weights file with the head counts of its case") {
        std::ifstream cases(std::filesystem::path(VKMHA_FIXTURE_DIR) / "cases.txt");
        REQUIRE(cases.good());
        int mapped = 0;
        for (std::string line; std::getline(cases, line);) {
            std::istringstream fields(line);
            std::string name, heads_field, kv_field;
            if (!(fields >> name >> heads_field >> kv_field)) continue;
            REQUIRE(heads_field.rfind("heads=", 0) == 0);
            REQUIRE(kv_field.rfind("kv_heads=", 0) == 0);
            const auto heads = static_cast<uint32_t>(std::stoul(heads_field.substr(6)));
            const auto kv_heads = static_cast<uint32_t>(std::stoul(kv_field.substr(9)));
            const std::string path =
                (std::filesystem::path(VKMHA_FIXTURE_DIR) / (name + ".weights.safetensors")).string();
            CAPTURE(path);
            auto tensors = read_safetensors(path);
            REQUIRE(tensors.ok());
            for (const uint32_t requested : {0u, kv_heads}) {
                auto model = map_attention_weights(tensors.value(), heads, requested, path);
                REQUIRE(model.ok());
                const AttentionConfig& c = model->config;
                CHECK(c.num_heads == heads);
                CHECK(c.num_kv_heads == kv_heads);
                CHECK(c.embed_dim % heads == 0);
                const AttentionWeights& w = model->weights;
                CHECK(w.wq.size() == uint64_t{c.embed_dim} * c.embed_dim);
                CHECK(w.wk.size() == uint64_t{c.kv_width()} * c.kdim);
                CHECK(w.wv.size() == uint64_t{c.kv_width()} * c.vdim);
                CHECK(w.wo.size() == uint64_t{c.embed_dim} * c.embed_dim);
            }
            ++mapped;
        }
        CHECK(mapped > 0);
    }
#endif

} // TEST_SUITE("weight_map")
