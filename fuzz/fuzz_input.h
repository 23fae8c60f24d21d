// The fuzzer's bytes read as a stream of small decisions: each read takes what it needs and yields zeros once the
// input is used up, so every input, however short, is a complete program.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

namespace vkmha::fuzz {

class FuzzInput {
  public:
    FuzzInput(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}

    bool empty() const { return m_pos >= m_size; }
    uint8_t byte() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    bool flag() { return byte() & 1; }
    uint32_t u32() { return static_cast<uint32_t>(take(4)); }
    uint64_t u64() { return take(8); }
    // One of `choices`, by the next byte.
    template <typename T> T pick(std::initializer_list<T> choices) { return choices.begin()[byte() % choices.size()]; }
    // A count or size as shapes use them: mostly small, sometimes an edge (0, 2^16 - 1, 2^32 - 1) or any 32 bits.
    uint32_t dim() {
        switch (byte() % 8) {
        case 0: return 0;
        case 1: return 1;
        case 2: return 65535;
        case 3: return 0xFFFFFFFFu;
        case 4: return u32();
        default: return 1 + byte() % 16;
        }
    }

    // An enum field as a C caller may fill it: mostly one of its `count` values or one past them, sometimes any 32
    // bits, stored bit for bit (a C++ enum object cannot be given every value; the library must read it as bits).
    template <typename E> void enum_field(E& field, uint32_t count) {
        static_assert(sizeof(E) == sizeof(uint32_t));
        const uint8_t b = byte();
        const uint32_t value = b < 240 ? b % (count + 1) : u32();
        std::memcpy(&field, &value, sizeof value);
    }

  private:
    uint64_t take(size_t n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i) v |= uint64_t(byte()) << (8 * i);
        return v;
    }
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos = 0;
};

} // namespace vkmha::fuzz
