// Reading and writing .safetensors files (the Hugging Face format), validating every byte of untrusted input.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section that follows),
// plus an optional "__metadata__" string->string map. The reader rejects everything the reference implementation
// rejects (notably, the tensors must tile the data section with no overlap, gap or trailing bytes) and also
// duplicate keys, which the reference resolves silently, and dtypes newer than F8_E4M3.
// No function returning a Result throws; every failure is an Error whose one-line message names the file, the tensor
// when known and the offending value.
#pragma once

#include "result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vkmha::io {

// In the reference implementation's order (increasing element size), which the writer relies on to
// lay out larger elements first and so keep every tensor's data aligned to its element size.
enum class DType : uint8_t { boolean, u8, i8, f8_e5m2, f8_e4m3, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64 };

inline constexpr DType all_dtypes[] = {DType::boolean, DType::u8,  DType::i8,  DType::f8_e5m2, DType::f8_e4m3,
                                       DType::i16,     DType::u16, DType::f16, DType::bf16,    DType::i32,
                                       DType::u32,     DType::f32, DType::f64, DType::i64,     DType::u64};

std::string_view dtype_name(DType dtype); // as spelled in the file: "F32", "BOOL", "F8_E4M3"
std::optional<DType> dtype_from_name(std::string_view name);
size_t dtype_size(DType dtype); // bytes per element

// One tensor, owning its bytes (little-endian, row-major). An empty shape is a scalar (one element).
struct Tensor {
    std::string name;
    DType dtype = DType::f32;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> data;
};

// Reads the header first and then each tensor straight into its own buffer, so a file costs its size
// in memory once. Errors: io (unreadable or malformed), out_of_memory.
Result<std::vector<Tensor>> read_safetensors(const std::string& path);

// `origin_for_messages` stands for the file name in error messages. Tensors come back in header order.
Result<std::vector<Tensor>> parse_safetensors(const uint8_t* data, size_t size, const std::string& origin_for_messages);

// Byte-for-byte what the reference implementation writes for the same tensors without metadata.
// Errors: invalid_argument (duplicate or reserved name, name not UTF-8, data size != shape), out_of_memory.
Result<std::vector<uint8_t>> serialize_safetensors(const std::vector<Tensor>& tensors);

// serialize_safetensors to a file. Errors: those of serialize_safetensors, io.
Status write_safetensors(const std::string& path, const std::vector<Tensor>& tensors);

// nullptr when absent.
const Tensor* find_tensor(const std::vector<Tensor>& tensors, std::string_view name);

// F32, F16 and BF16 to float. `file` is for the message. Errors: io (other dtype), invalid_argument
// (data size does not match the shape, which only a hand-built Tensor can have), out_of_memory.
Result<std::vector<float>> to_float(const Tensor& tensor, const std::string& file);

// BOOL and U8 to one byte per element, 0 or 1. Errors as for to_float.
Result<std::vector<uint8_t>> to_bool_bytes(const Tensor& tensor, const std::string& file);

// values.size() must be the product of shape; serialize_safetensors reports a mismatch.
Tensor make_f32_tensor(std::string name, std::vector<uint64_t> shape, const std::vector<float>& values);

// For one-line messages: "[3072, 1024]" (long shapes shortened); text with control characters escaped and
// cut to max_bytes at a UTF-8 boundary; a name in quotes, escaped and shortened.
std::string shape_to_string(const std::vector<uint64_t>& shape);
std::string printable_for_message(std::string_view text, size_t max_bytes);
std::string quote_for_message(std::string_view name);

} // namespace vkmha::io
