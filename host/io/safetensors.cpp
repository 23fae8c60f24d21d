// The safetensors reader (a strict JSON header parser and layout validator) and the writer.
#include "io/safetensors.h"

#include "io/half.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <new>
#include <system_error>
#include <unordered_set>
#include <utility>

namespace vkmha::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied as is; a big-endian host needs byte swapping");

namespace {

// The reference implementation's limit (it uses 100,000,000); a header past it is hostile or broken.
constexpr uint64_t max_header_bytes = 100ull << 20;
// Caps that bound what a hostile header can make the parser allocate (docs/SECURITY.md). The largest public
// checkpoints hold a few thousand tensors per file (Llama 3.1 405B: about 1,100 in all) of rank at most 5; each parsed
// entry costs a few hundred bytes, so these keep a 100 MiB header's parse within a small multiple of its size.
constexpr size_t max_tensor_count = 100000;
constexpr size_t max_tensor_rank = 64; // PyTorch's own limit on dimensions
// Deeper JSON is rejected rather than recursed into, so a hostile header cannot exhaust the stack.
constexpr int max_json_depth = 64;
constexpr size_t max_name_bytes_in_messages = 80;
constexpr size_t max_dims_in_messages = 16;

struct DTypeInfo {
    DType dtype;
    std::string_view name;
    size_t size;
};

constexpr DTypeInfo dtype_table[] = {
    {DType::boolean, "BOOL", 1},    {DType::u8, "U8", 1},   {DType::i8, "I8", 1},   {DType::f8_e5m2, "F8_E5M2", 1},
    {DType::f8_e4m3, "F8_E4M3", 1}, {DType::i16, "I16", 2}, {DType::u16, "U16", 2}, {DType::f16, "F16", 2},
    {DType::bf16, "BF16", 2},       {DType::i32, "I32", 4}, {DType::u32, "U32", 4}, {DType::f32, "F32", 4},
    {DType::f64, "F64", 8},         {DType::i64, "I64", 8}, {DType::u64, "U64", 8},
};

// Escapes control characters so that a message stays on one line, and cuts long text at a UTF-8 boundary.
std::string printable(std::string_view text, size_t max_bytes) {
    size_t length = text.size();
    const bool cut = length > max_bytes;
    if (cut) {
        length = max_bytes;
        while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xc0u) == 0x80u) --length;
    }
    std::string out;
    out.reserve(length + 3);
    for (size_t i = 0; i < length; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20u || c == 0x7fu) {
            constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xfu];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (cut) out += "...";
    return out;
}

std::string quote_name(std::string_view name) { return "'" + printable(name, max_name_bytes_in_messages) + "'"; }

std::string tensor_context(std::string_view name) { return "tensor " + quote_name(name) + ": "; }

Error error_in(ErrorCode code, std::string_view origin, const std::string& what) {
    return make_error(code, printable(origin, 1024) + ": " + what);
}

Error io_error(std::string_view origin, const std::string& what) { return error_in(ErrorCode::io, origin, what); }

Error out_of_memory_error(std::string_view origin) {
    return error_in(ErrorCode::out_of_memory, origin, "out of host memory");
}

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
    if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return std::nullopt;
    return a * b;
}

std::optional<uint64_t> element_count(const std::vector<uint64_t>& shape) {
    uint64_t count = 1;
    // Like the reference, a product that overflows before reaching a zero dimension is still an overflow.
    for (const uint64_t dim : shape) {
        const auto next = checked_mul(count, dim);
        if (!next) return std::nullopt;
        count = *next;
    }
    return count;
}

// The byte size of a tensor, or a message (after "tensor 'x': ") saying why it has none.
Result<uint64_t> byte_size(DType dtype, const std::vector<uint64_t>& shape, std::string_view origin,
                           std::string_view name, ErrorCode code) {
    const auto count = element_count(shape);
    if (!count)
        return error_in(code, origin,
                        tensor_context(name) + "shape " + shape_to_string(shape) + " has more than 2^64 elements");
    const auto bytes = checked_mul(*count, dtype_size(dtype));
    if (!bytes)
        return error_in(code, origin,
                        tensor_context(name) + std::string(dtype_name(dtype)) + " shape " + shape_to_string(shape) +
                            " needs more than 2^64 bytes");
    if constexpr (sizeof(size_t) < sizeof(uint64_t)) {
        if (*bytes > std::numeric_limits<size_t>::max())
            return error_in(code, origin,
                            tensor_context(name) + std::to_string(*bytes) + " bytes do not fit in this address space");
    }
    return *bytes;
}

// Length of the valid UTF-8 sequence starting at text[pos], or 0 (overlong forms, surrogates and code
// points past U+10FFFF are invalid, as in Rust's str::from_utf8 which the reference applies to the header).
size_t utf8_sequence_length(std::string_view text, size_t pos) {
    auto byte = [&](size_t i) -> unsigned {
        return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i]) : 0u;
    };
    auto continuation = [&](size_t i, unsigned lo = 0x80u, unsigned hi = 0xbfu) {
        const unsigned b = byte(i);
        return pos + i < text.size() && b >= lo && b <= hi;
    };
    const unsigned lead = byte(0);
    if (lead < 0x80u) return 1;
    if (lead >= 0xc2u && lead <= 0xdfu) return continuation(1) ? 2 : 0;
    if (lead == 0xe0u) return continuation(1, 0xa0u) && continuation(2) ? 3 : 0;
    if ((lead >= 0xe1u && lead <= 0xecu) || lead == 0xeeu || lead == 0xefu)
        return continuation(1) && continuation(2) ? 3 : 0;
    if (lead == 0xedu) return continuation(1, 0x80u, 0x9fu) && continuation(2) ? 3 : 0;
    if (lead == 0xf0u) return continuation(1, 0x90u) && continuation(2) && continuation(3) ? 4 : 0;
    if (lead >= 0xf1u && lead <= 0xf3u) return continuation(1) && continuation(2) && continuation(3) ? 4 : 0;
    if (lead == 0xf4u) return continuation(1, 0x80u, 0x8fu) && continuation(2) && continuation(3) ? 4 : 0;
    return 0;
}

bool is_valid_utf8(std::string_view text) {
    for (size_t pos = 0; pos < text.size();) {
        const size_t length = utf8_sequence_length(text, pos);
        if (length == 0) return false;
        pos += length;
    }
    return true;
}

void append_utf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80u) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800u) {
        out += static_cast<char>(0xc0u | (code_point >> 6));
        out += static_cast<char>(0x80u | (code_point & 0x3fu));
    } else if (code_point < 0x10000u) {
        out += static_cast<char>(0xe0u | (code_point >> 12));
        out += static_cast<char>(0x80u | ((code_point >> 6) & 0x3fu));
        out += static_cast<char>(0x80u | (code_point & 0x3fu));
    } else {
        out += static_cast<char>(0xf0u | (code_point >> 18));
        out += static_cast<char>(0x80u | ((code_point >> 12) & 0x3fu));
        out += static_cast<char>(0x80u | ((code_point >> 6) & 0x3fu));
        out += static_cast<char>(0x80u | (code_point & 0x3fu));
    }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct TensorEntry {
    std::string name;
    DType dtype = DType::f32;
    std::vector<uint64_t> shape;
    uint64_t begin = 0;
    uint64_t end = 0;
};

// A strict JSON parser for exactly the safetensors header; values under unknown keys are checked and skipped.
class HeaderParser {
  public:
    HeaderParser(std::string_view text, std::string_view origin) : m_text(text), m_origin(origin) {}

    Result<std::vector<TensorEntry>> parse() {
        std::vector<TensorEntry> entries;
        skip_whitespace();
        if (at_end()) return error("header is empty");
        if (peek() != '{') return error("header is not a JSON object (it starts with " + describe_here() + ")");
        std::unordered_set<std::string> names;
        bool have_metadata = false;
        VKMHA_TRY(parse_object(1, [&](std::string key) -> Status {
            if (key == "__metadata__") {
                if (have_metadata) return error("header has \"__metadata__\" twice");
                have_metadata = true;
                return parse_metadata();
            }
            if (entries.size() == max_tensor_count)
                return error("header lists more than " + std::to_string(max_tensor_count) + " tensors");
            if (!names.insert(key).second) return error("duplicate tensor name " + quote_name(key));
            auto entry = parse_tensor_info(std::move(key));
            if (!entry) return entry.take_error();
            entries.push_back(std::move(entry.value()));
            return {};
        }));
        skip_whitespace();
        if (!at_end()) return syntax_error("the end of the header");
        return entries;
    }

  private:
    std::string_view m_text;
    std::string_view m_origin;
    size_t m_pos = 0;

    Error error(const std::string& what) const { return io_error(m_origin, what); }

    Error syntax_error(std::string_view expected) const {
        return error("header is not valid JSON: expected " + std::string(expected) + " at header byte " +
                     std::to_string(m_pos) + ", found " + describe_char_here());
    }

    bool at_end() const { return m_pos >= m_text.size(); }
    char peek() const { return m_text[m_pos]; } // only when !at_end()

    void skip_whitespace() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++m_pos;
    }

    bool consume(char c) {
        skip_whitespace();
        if (at_end() || peek() != c) return false;
        ++m_pos;
        return true;
    }

    std::string describe_char_here() const {
        if (at_end()) return "the end of the header";
        const auto c = static_cast<unsigned char>(peek());
        if (c >= 0x20u && c < 0x7fu) return std::string("'") + static_cast<char>(c) + "'";
        constexpr char hex[] = "0123456789abcdef";
        return std::string("byte 0x") + hex[c >> 4] + hex[c & 0xfu];
    }

    // What kind of JSON value starts here, for "must be X, got Y" messages.
    std::string describe_here() const {
        if (at_end()) return "the end of the header";
        switch (peek()) {
        case '"': return "a string";
        case '{': return "an object";
        case '[': return "an array";
        case 't':
        case 'f': return "a boolean";
        case 'n': return "null";
        default: return (peek() == '-' || is_digit(peek())) ? "a number" : describe_char_here();
        }
    }

    // The value here is of the wrong kind: report a syntax error inside it first, if it has one.
    Error wrong_type(const std::string& what, std::string_view expected, int depth) {
        const std::string kind = describe_here();
        auto skipped = skip_value(depth);
        if (!skipped) return skipped.take_error();
        return error(what + " must be " + std::string(expected) + ", got " + kind);
    }

    // Calls on_member(key) with the position at the member's value; starts at '{'.
    template <typename OnMember> Status parse_object(int depth, OnMember&& on_member) {
        if (depth > max_json_depth)
            return error("header nests deeper than " + std::to_string(max_json_depth) + " levels");
        ++m_pos;
        if (consume('}')) return {};
        for (;;) {
            skip_whitespace();
            if (at_end() || peek() != '"') return syntax_error("a string key");
            auto key = parse_string();
            if (!key) return key.take_error();
            if (!consume(':')) return syntax_error("':'");
            skip_whitespace();
            VKMHA_TRY(on_member(std::move(key.value())));
            if (consume(',')) continue;
            if (consume('}')) return {};
            return syntax_error("',' or '}'");
        }
    }

    // Calls on_element(index) with the position at the element; starts at '['.
    template <typename OnElement> Status parse_array(int depth, OnElement&& on_element) {
        if (depth > max_json_depth)
            return error("header nests deeper than " + std::to_string(max_json_depth) + " levels");
        ++m_pos;
        if (consume(']')) return {};
        for (size_t index = 0;; ++index) {
            skip_whitespace();
            VKMHA_TRY(on_element(index));
            if (consume(',')) continue;
            if (consume(']')) return {};
            return syntax_error("',' or ']'");
        }
    }

    Result<uint32_t> parse_hex4() {
        uint32_t value = 0;
        for (int i = 0; i < 4; ++i) {
            if (at_end()) return syntax_error("a hex digit");
            const char c = peek();
            uint32_t digit = 0;
            if (is_digit(c))
                digit = static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                digit = static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                digit = static_cast<uint32_t>(c - 'A' + 10);
            else
                return syntax_error("a hex digit");
            value = value * 16 + digit;
            ++m_pos;
        }
        return value;
    }

    // Starts at '"'; returns the decoded UTF-8 text.
    Result<std::string> parse_string() {
        const size_t start = m_pos;
        ++m_pos;
        std::string out;
        for (;;) {
            if (at_end()) {
                m_pos = start;
                return error("header is not valid JSON: string at header byte " + std::to_string(start) +
                             " is not terminated");
            }
            const auto c = static_cast<unsigned char>(peek());
            if (c == '"') {
                ++m_pos;
                return out;
            }
            if (c < 0x20u) return syntax_error("an escape instead of a raw control character");
            if (c != '\\') {
                const size_t length = utf8_sequence_length(m_text, m_pos);
                if (length == 0) return syntax_error("valid UTF-8");
                out.append(m_text.substr(m_pos, length));
                m_pos += length;
                continue;
            }
            ++m_pos;
            if (at_end()) return syntax_error("an escape character");
            const char escape = peek();
            ++m_pos;
            switch (escape) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                auto unit = parse_hex4();
                if (!unit) return unit.take_error();
                uint32_t code_point = *unit;
                if (code_point >= 0xdc00u && code_point <= 0xdfffu) {
                    m_pos -= 6;
                    return syntax_error("a high surrogate before a low surrogate");
                }
                if (code_point >= 0xd800u && code_point <= 0xdbffu) {
                    if (m_pos + 1 >= m_text.size() || m_text[m_pos] != '\\' || m_text[m_pos + 1] != 'u')
                        return syntax_error("a low surrogate after a high surrogate");
                    m_pos += 2;
                    auto low = parse_hex4();
                    if (!low) return low.take_error();
                    if (*low < 0xdc00u || *low > 0xdfffu) {
                        m_pos -= 6;
                        return syntax_error("a low surrogate after a high surrogate");
                    }
                    code_point = 0x10000u + ((code_point - 0xd800u) << 10) + (*low - 0xdc00u);
                }
                append_utf8(out, code_point);
                break;
            }
            default: m_pos -= 1; return syntax_error("a valid escape character");
            }
        }
    }

    // A JSON number's text, grammar-checked.
    Result<std::string_view> parse_number_token() {
        const size_t start = m_pos;
        if (!at_end() && peek() == '-') ++m_pos;
        if (at_end() || !is_digit(peek())) return syntax_error("a digit");
        if (peek() == '0')
            ++m_pos;
        else
            while (!at_end() && is_digit(peek())) ++m_pos;
        if (!at_end() && peek() == '.') {
            ++m_pos;
            if (at_end() || !is_digit(peek())) return syntax_error("a digit after '.'");
            while (!at_end() && is_digit(peek())) ++m_pos;
        }
        if (!at_end() && (peek() == 'e' || peek() == 'E')) {
            ++m_pos;
            if (!at_end() && (peek() == '+' || peek() == '-')) ++m_pos;
            if (at_end() || !is_digit(peek())) return syntax_error("a digit in the exponent");
            while (!at_end() && is_digit(peek())) ++m_pos;
        }
        return m_text.substr(start, m_pos - start);
    }

    Status skip_literal(std::string_view word) {
        if (m_text.substr(m_pos, word.size()) != word) return syntax_error("a JSON value");
        m_pos += word.size();
        return {};
    }

    Status skip_value(int depth) {
        skip_whitespace();
        if (at_end()) return syntax_error("a JSON value");
        switch (peek()) {
        case '"': {
            auto text = parse_string();
            if (!text) return text.take_error();
            return {};
        }
        case '{': return parse_object(depth, [&](std::string) { return skip_value(depth + 1); });
        case '[': return parse_array(depth, [&](size_t) { return skip_value(depth + 1); });
        case 't': return skip_literal("true");
        case 'f': return skip_literal("false");
        case 'n': return skip_literal("null");
        default: {
            if (peek() != '-' && !is_digit(peek())) return syntax_error("a JSON value");
            auto number = parse_number_token();
            if (!number) return number.take_error();
            return {};
        }
        }
    }

    Result<uint64_t> parse_u64(const std::string& what, int depth) {
        if (at_end() || (peek() != '-' && !is_digit(peek()))) return wrong_type(what, "a non-negative integer", depth);
        auto token = parse_number_token();
        if (!token) return token.take_error();
        const std::string_view text = *token;
        if (text.find_first_of("-.eE") != std::string_view::npos)
            return error(what + " must be a non-negative integer, got " + printable(text, 40));
        uint64_t value = 0;
        for (const char c : text) {
            const auto digit = static_cast<uint64_t>(c - '0');
            if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10)
                return error(what + " " + printable(text, 40) + " does not fit in 64 bits");
            value = value * 10 + digit;
        }
        return value;
    }

    Result<std::vector<uint64_t>> parse_u64_array(const std::string& what, int depth, size_t max_count) {
        if (at_end() || peek() != '[') return wrong_type(what, "an array of non-negative integers", depth);
        std::vector<uint64_t> values;
        VKMHA_TRY(parse_array(depth, [&](size_t index) -> Status {
            if (index == max_count) return error(what + " has more than " + std::to_string(max_count) + " entries");
            auto value = parse_u64(what + "[" + std::to_string(index) + "]", depth + 1);
            if (!value) return value.take_error();
            values.push_back(*value);
            return {};
        }));
        return values;
    }

    Result<TensorEntry> parse_tensor_info(std::string name) {
        const std::string context = tensor_context(name);
        if (at_end() || peek() != '{')
            return wrong_type(context + "its entry", "an object with dtype, shape and data_offsets", 2);
        TensorEntry entry;
        bool have_dtype = false, have_shape = false, have_offsets = false;
        VKMHA_TRY(parse_object(2, [&](std::string key) -> Status {
            auto check_once = [&](bool& seen) -> Status {
                if (seen) return error(context + "duplicate key \"" + key + "\"");
                seen = true;
                return {};
            };
            if (key == "dtype") {
                if (auto once = check_once(have_dtype); !once) return once;
                if (at_end() || peek() != '"') return wrong_type(context + "dtype", "a string", 3);
                auto text = parse_string();
                if (!text) return text.take_error();
                const auto dtype = dtype_from_name(*text);
                if (!dtype) return error(context + "unknown dtype " + quote_name(*text));
                entry.dtype = *dtype;
                return {};
            }
            if (key == "shape") {
                if (auto once = check_once(have_shape); !once) return once;
                auto shape = parse_u64_array(context + "shape", 3, max_tensor_rank);
                if (!shape) return shape.take_error();
                entry.shape = std::move(shape.value());
                return {};
            }
            if (key == "data_offsets") {
                if (auto once = check_once(have_offsets); !once) return once;
                // Capped like a shape (any cap over 2 keeps the exact message below for short arrays).
                auto offsets = parse_u64_array(context + "data_offsets", 3, max_tensor_rank);
                if (!offsets) return offsets.take_error();
                if (offsets->size() != 2)
                    return error(context + "data_offsets must be [begin, end], got " + std::to_string(offsets->size()) +
                                 " values");
                entry.begin = (*offsets)[0];
                entry.end = (*offsets)[1];
                return {};
            }
            return skip_value(3); // the reference ignores unknown keys too
        }));
        if (!have_dtype) return error(context + "missing \"dtype\"");
        if (!have_shape) return error(context + "missing \"shape\"");
        if (!have_offsets) return error(context + "missing \"data_offsets\"");
        entry.name = std::move(name);
        return entry;
    }

    // Checked for well-formedness and otherwise ignored.
    Status parse_metadata() {
        if (!at_end() && peek() == 'n') return skip_literal("null"); // the reference reads it as absent
        if (at_end() || peek() != '{') return wrong_type("\"__metadata__\"", "an object of strings", 2);
        std::unordered_set<std::string> keys;
        return parse_object(2, [&](std::string key) -> Status {
            if (!keys.insert(key).second) return error("\"__metadata__\" has the key " + quote_name(key) + " twice");
            if (at_end() || peek() != '"')
                return wrong_type("\"__metadata__\" entry " + quote_name(key), "a string", 3);
            auto value = parse_string();
            if (!value) return value.take_error();
            return {};
        });
    }
};

struct Layout {
    std::vector<TensorEntry> entries; // in header order
    std::vector<size_t> by_offset;    // indices into entries, in data order
};

// The tensors must tile [0, data_size) exactly, as the reference requires.
Result<Layout> validate_layout(std::vector<TensorEntry> entries, uint64_t data_size, std::string_view origin) {
    for (const TensorEntry& entry : entries) {
        const std::string context = tensor_context(entry.name);
        const std::string offsets =
            "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
        auto bytes = byte_size(entry.dtype, entry.shape, origin, entry.name, ErrorCode::io);
        if (!bytes) return bytes.take_error();
        if (entry.begin > entry.end) return io_error(origin, context + offsets + " are reversed");
        if (entry.end > data_size)
            return io_error(origin,
                            context + offsets + " exceed the data section (" + std::to_string(data_size) + " bytes)");
        if (entry.end - entry.begin != *bytes)
            return io_error(origin, context + offsets + " hold " + std::to_string(entry.end - entry.begin) +
                                        " bytes but " + std::string(dtype_name(entry.dtype)) + " " +
                                        shape_to_string(entry.shape) + " needs " + std::to_string(*bytes));
    }
    Layout layout;
    layout.by_offset.resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) layout.by_offset[i] = i;
    std::sort(layout.by_offset.begin(), layout.by_offset.end(), [&](size_t a, size_t b) {
        return std::pair(entries[a].begin, entries[a].end) < std::pair(entries[b].begin, entries[b].end);
    });
    uint64_t covered = 0;
    const TensorEntry* previous = nullptr;
    for (const size_t index : layout.by_offset) {
        const TensorEntry& entry = entries[index];
        if (entry.begin < covered)
            return io_error(origin, tensor_context(entry.name) + "data_offsets [" + std::to_string(entry.begin) + ", " +
                                        std::to_string(entry.end) + "] overlap tensor " + quote_name(previous->name) +
                                        " [" + std::to_string(previous->begin) + ", " + std::to_string(previous->end) +
                                        "]");
        if (entry.begin > covered)
            return io_error(origin, "data section bytes [" + std::to_string(covered) + ", " +
                                        std::to_string(entry.begin) + ") belong to no tensor");
        covered = entry.end;
        previous = &entry;
    }
    if (covered != data_size)
        return io_error(origin, "data section has " + std::to_string(data_size) +
                                    " bytes but the tensors end at byte " + std::to_string(covered));
    layout.entries = std::move(entries);
    return layout;
}

uint64_t load_u64_le(const uint8_t* bytes) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
    return value;
}

// Checks the 8-byte length prefix against the file size; returns the header length.
Result<uint64_t> check_header_length(const uint8_t* prefix, uint64_t file_size, std::string_view origin) {
    if (file_size < 8)
        return io_error(origin,
                        "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
    const uint64_t header_length = load_u64_le(prefix);
    if (header_length > max_header_bytes)
        return io_error(origin, "header length " + std::to_string(header_length) + " exceeds the 100 MiB limit");
    if (header_length > file_size - 8)
        return io_error(origin, "header length " + std::to_string(header_length) + " exceeds the " +
                                    std::to_string(file_size - 8) + " bytes after the length");
    return header_length;
}

Result<Layout> parse_layout(const uint8_t* header, uint64_t header_length, uint64_t data_size,
                            std::string_view origin) {
    const std::string_view text(reinterpret_cast<const char*>(header), static_cast<size_t>(header_length));
    auto entries = HeaderParser(text, origin).parse();
    if (!entries) return entries.take_error();
    return validate_layout(std::move(entries.value()), data_size, origin);
}

Tensor make_tensor(TensorEntry&& entry) {
    Tensor tensor;
    tensor.name = std::move(entry.name);
    tensor.dtype = entry.dtype;
    tensor.shape = std::move(entry.shape);
    tensor.data.resize(static_cast<size_t>(entry.end - entry.begin));
    return tensor;
}

Result<std::vector<Tensor>> parse_buffer(const uint8_t* data, size_t size, const std::string& origin) {
    if (data == nullptr && size != 0)
        return error_in(ErrorCode::invalid_argument, origin, "null data with a nonzero size");
    auto header_length = check_header_length(data, size, origin);
    if (!header_length) return header_length.take_error();
    const uint8_t* header = data + 8;
    const uint64_t data_size = size - 8 - *header_length;
    auto layout = parse_layout(header, *header_length, data_size, origin);
    if (!layout) return layout.take_error();
    const uint8_t* data_section = header + *header_length;
    std::vector<Tensor> tensors;
    tensors.reserve(layout->entries.size());
    for (TensorEntry& entry : layout->entries) {
        const auto begin = static_cast<size_t>(entry.begin);
        tensors.push_back(make_tensor(std::move(entry)));
        if (!tensors.back().data.empty())
            std::memcpy(tensors.back().data.data(), data_section + begin, tensors.back().data.size());
    }
    return tensors;
}

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

Status read_exactly(std::FILE* file, uint8_t* out, size_t size, uint64_t offset, const std::string& path) {
    if (size == 0) return {};
    if (std::fread(out, 1, size, file) == size) return {};
    const bool failed = std::ferror(file) != 0;
    const int error = errno;
    return io_error(
        path, "reading " + std::to_string(size) + " bytes at file offset " + std::to_string(offset) +
                  " failed: " + (failed ? errno_text(error) : std::string("the file ended early (was it truncated?)")));
}

Result<std::vector<Tensor>> read_file(const std::string& path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found) return io_error(path, "cannot open: no such file");
    if (ec) return io_error(path, "cannot open: " + ec.message());
    // Refuse FIFOs and devices up front: reading them could block forever or never end.
    if (!std::filesystem::is_regular_file(status)) return io_error(path, "not a regular file");
    const uint64_t file_size = std::filesystem::file_size(path, ec);
    if (ec) return io_error(path, "cannot get the file size: " + ec.message());

    FilePtr file(std::fopen(path.c_str(), "rb"));
    if (!file) return io_error(path, "cannot open: " + errno_text(errno));
    uint8_t prefix[8] = {};
    if (file_size >= 8) VKMHA_TRY(read_exactly(file.get(), prefix, 8, 0, path));
    auto header_length = check_header_length(prefix, file_size, path);
    if (!header_length) return header_length.take_error();
    std::vector<uint8_t> header(static_cast<size_t>(*header_length));
    VKMHA_TRY(read_exactly(file.get(), header.data(), header.size(), 8, path));
    const uint64_t data_start = 8 + *header_length;
    auto layout = parse_layout(header.data(), *header_length, file_size - data_start, path);
    if (!layout) return layout.take_error();

    std::vector<Tensor> tensors;
    tensors.reserve(layout->entries.size());
    for (TensorEntry& entry : layout->entries) tensors.push_back(make_tensor(std::move(entry)));
    // The layout tiles the data section, so reading in offset order is one sequential pass.
    uint64_t offset = data_start;
    for (const size_t index : layout->by_offset) {
        std::vector<uint8_t>& bytes = tensors[index].data;
        VKMHA_TRY(read_exactly(file.get(), bytes.data(), bytes.size(), offset, path));
        offset += bytes.size();
    }
    return tensors;
}

void append_json_string(std::string& out, std::string_view text) {
    // serde_json's escaping, so that the header matches the reference byte for byte.
    constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20u) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xfu];
            } else {
                out += ch;
            }
        }
    }
    out += '"';
}

struct Prepared {
    std::vector<uint8_t> prefix; // length and header
    std::vector<size_t> order;   // indices of the tensors in data order
    uint64_t data_size = 0;
};

Result<Prepared> prepare(const std::vector<Tensor>& tensors, std::string_view origin) {
    std::unordered_set<std::string_view> names;
    for (const Tensor& tensor : tensors) {
        if (!is_valid_utf8(tensor.name))
            return error_in(ErrorCode::invalid_argument, origin,
                            "tensor name " + quote_name(tensor.name) + " is not valid UTF-8");
        if (tensor.name == "__metadata__")
            return error_in(ErrorCode::invalid_argument, origin,
                            "tensor name '__metadata__' is reserved for the metadata map");
        if (!names.insert(tensor.name).second)
            return error_in(ErrorCode::invalid_argument, origin, "duplicate tensor name " + quote_name(tensor.name));
        auto bytes = byte_size(tensor.dtype, tensor.shape, origin, tensor.name, ErrorCode::invalid_argument);
        if (!bytes) return bytes.take_error();
        if (*bytes != tensor.data.size())
            return error_in(ErrorCode::invalid_argument, origin,
                            tensor_context(tensor.name) + std::string(dtype_name(tensor.dtype)) + " " +
                                shape_to_string(tensor.shape) + " needs " + std::to_string(*bytes) +
                                " bytes, data has " + std::to_string(tensor.data.size()));
    }
    Prepared prepared;
    prepared.order.resize(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) prepared.order[i] = i;
    // The reference's order: larger elements first (so each tensor stays aligned), then by name.
    std::sort(prepared.order.begin(), prepared.order.end(), [&](size_t a, size_t b) {
        if (tensors[a].dtype != tensors[b].dtype) return tensors[a].dtype > tensors[b].dtype;
        return tensors[a].name < tensors[b].name;
    });
    std::string header = "{";
    uint64_t offset = 0;
    for (const size_t index : prepared.order) {
        const Tensor& tensor = tensors[index];
        if (header.size() > 1) header += ',';
        append_json_string(header, tensor.name);
        header += ":{\"dtype\":\"";
        header += dtype_name(tensor.dtype);
        header += "\",\"shape\":[";
        for (size_t d = 0; d < tensor.shape.size(); ++d) {
            if (d > 0) header += ',';
            header += std::to_string(tensor.shape[d]);
        }
        header += "],\"data_offsets\":[";
        header += std::to_string(offset);
        header += ',';
        offset += tensor.data.size();
        header += std::to_string(offset);
        header += "]}";
    }
    header += '}';
    header.append((8 - header.size() % 8) % 8, ' ');
    prepared.prefix.resize(8 + header.size());
    const uint64_t header_length = header.size();
    for (size_t i = 0; i < 8; ++i) prepared.prefix[i] = static_cast<uint8_t>(header_length >> (8 * i));
    std::memcpy(prepared.prefix.data() + 8, header.data(), header.size());
    prepared.data_size = offset;
    return prepared;
}

Status write_file(const std::string& path, const std::vector<Tensor>& tensors) {
    auto prepared = prepare(tensors, path);
    if (!prepared) return prepared.take_error();
    FilePtr file(std::fopen(path.c_str(), "wb"));
    if (!file) return io_error(path, "cannot create: " + errno_text(errno));
    auto write = [&](const std::vector<uint8_t>& bytes) {
        return bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), file.get()) == bytes.size();
    };
    bool ok = write(prepared->prefix);
    for (size_t i = 0; ok && i < prepared->order.size(); ++i) ok = write(tensors[prepared->order[i]].data);
    int error = ok ? 0 : errno;
    if (std::fclose(file.release()) != 0 && ok) {
        ok = false;
        error = errno;
    }
    if (!ok) {
        std::remove(path.c_str()); // a partial file would only fail later, further from the cause
        return io_error(path, "writing failed: " + errno_text(error));
    }
    return {};
}

// Public functions must not throw; std::bad_alloc is the realistic case.
template <typename Function> auto no_throw(std::string_view origin, Function&& function) -> decltype(function()) {
    try {
        return function();
    } catch (const std::bad_alloc&) {
        return out_of_memory_error(origin);
    } catch (const std::exception& e) {
        return error_in(ErrorCode::internal, origin, std::string("unexpected exception: ") + printable(e.what(), 200));
    } catch (...) {
        return error_in(ErrorCode::internal, origin, "unexpected exception");
    }
}

template <typename Element, typename Convert>
Result<std::vector<Element>> convert_elements(const Tensor& tensor, const std::string& file, Convert&& convert) {
    auto bytes = byte_size(tensor.dtype, tensor.shape, file, tensor.name, ErrorCode::invalid_argument);
    if (!bytes) return bytes.take_error();
    if (*bytes != tensor.data.size())
        return error_in(ErrorCode::invalid_argument, file,
                        tensor_context(tensor.name) + std::string(dtype_name(tensor.dtype)) + " " +
                            shape_to_string(tensor.shape) + " needs " + std::to_string(*bytes) + " bytes, data has " +
                            std::to_string(tensor.data.size()));
    const size_t count = tensor.data.size() / dtype_size(tensor.dtype);
    std::vector<Element> out(count);
    for (size_t i = 0; i < count; ++i) out[i] = convert(tensor.data.data() + i * dtype_size(tensor.dtype));
    return out;
}

uint16_t load_u16(const uint8_t* bytes) { return static_cast<uint16_t>(bytes[0] | (bytes[1] << 8)); }

} // namespace

std::string printable_for_message(std::string_view text, size_t max_bytes) { return printable(text, max_bytes); }

std::string quote_for_message(std::string_view name) { return quote_name(name); }

std::string_view dtype_name(DType dtype) {
    for (const DTypeInfo& info : dtype_table)
        if (info.dtype == dtype) return info.name;
    return "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
    for (const DTypeInfo& info : dtype_table)
        if (info.name == name) return info.dtype;
    return std::nullopt;
}

size_t dtype_size(DType dtype) {
    for (const DTypeInfo& info : dtype_table)
        if (info.dtype == dtype) return info.size;
    return 1;
}

std::string shape_to_string(const std::vector<uint64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) out += ", ";
        if (i == max_dims_in_messages) {
            out += "... (" + std::to_string(shape.size()) + " dims)";
            break;
        }
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

Result<std::vector<Tensor>> read_safetensors(const std::string& path) {
    return no_throw(path, [&] { return read_file(path); });
}

Result<std::vector<Tensor>> parse_safetensors(const uint8_t* data, size_t size,
                                              const std::string& origin_for_messages) {
    return no_throw(origin_for_messages, [&] { return parse_buffer(data, size, origin_for_messages); });
}

Result<std::vector<uint8_t>> serialize_safetensors(const std::vector<Tensor>& tensors) {
    constexpr std::string_view origin = "serialize_safetensors";
    return no_throw(origin, [&]() -> Result<std::vector<uint8_t>> {
        auto prepared = prepare(tensors, origin);
        if (!prepared) return prepared.take_error();
        std::vector<uint8_t> out = std::move(prepared->prefix);
        out.reserve(out.size() + static_cast<size_t>(prepared->data_size));
        for (const size_t index : prepared->order)
            out.insert(out.end(), tensors[index].data.begin(), tensors[index].data.end());
        return out;
    });
}

Status write_safetensors(const std::string& path, const std::vector<Tensor>& tensors) {
    return no_throw(path, [&] { return write_file(path, tensors); });
}

const Tensor* find_tensor(const std::vector<Tensor>& tensors, std::string_view name) {
    for (const Tensor& tensor : tensors)
        if (tensor.name == name) return &tensor;
    return nullptr;
}

Result<std::vector<float>> to_float(const Tensor& tensor, const std::string& file) {
    return no_throw(file, [&]() -> Result<std::vector<float>> {
        switch (tensor.dtype) {
        case DType::f32:
            return convert_elements<float>(tensor, file, [](const uint8_t* bytes) {
                uint32_t bits = 0;
                std::memcpy(&bits, bytes, 4);
                return std::bit_cast<float>(bits);
            });
        case DType::f16:
            return convert_elements<float>(tensor, file,
                                           [](const uint8_t* bytes) { return half_to_float(load_u16(bytes)); });
        case DType::bf16:
            return convert_elements<float>(tensor, file,
                                           [](const uint8_t* bytes) { return bf16_to_float(load_u16(bytes)); });
        default:
            return io_error(file, tensor_context(tensor.name) + "dtype " + std::string(dtype_name(tensor.dtype)) +
                                      " is not a float type (expected F32, F16 or BF16)");
        }
    });
}

Result<std::vector<uint8_t>> to_bool_bytes(const Tensor& tensor, const std::string& file) {
    return no_throw(file, [&]() -> Result<std::vector<uint8_t>> {
        if (tensor.dtype != DType::boolean && tensor.dtype != DType::u8)
            return io_error(file, tensor_context(tensor.name) + "dtype " + std::string(dtype_name(tensor.dtype)) +
                                      " is not a boolean type (expected BOOL or U8)");
        return convert_elements<uint8_t>(tensor, file,
                                         [](const uint8_t* bytes) { return static_cast<uint8_t>(*bytes != 0); });
    });
}

Tensor make_f32_tensor(std::string name, std::vector<uint64_t> shape, const std::vector<float>& values) {
    Tensor tensor;
    tensor.name = std::move(name);
    tensor.dtype = DType::f32;
    tensor.shape = std::move(shape);
    tensor.data.resize(values.size() * sizeof(float));
    if (!values.empty()) std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
    return tensor;
}

} // namespace vkmha::io
