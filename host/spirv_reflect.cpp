// SPIR-V reflection of a compute kernel's host interface: one pass over the module's instructions collects the
// decorations, names and types it needs, a second step resolves the storage buffers and the push-constant block.
#include "spirv_reflect.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <unordered_map>

namespace vkmha {
namespace {

// The few opcodes, decorations and enumerants of the SPIR-V specification this reflection reads.
namespace op {
constexpr uint32_t member_name = 6, execution_mode = 16, type_int = 21, type_float = 22, type_vector = 23,
                   type_struct = 30, type_pointer = 32, variable = 59, decorate = 71, member_decorate = 72;
}
namespace decoration {
constexpr uint32_t non_writable = 24, non_readable = 25, binding = 33, descriptor_set = 34, offset = 35;
}
constexpr uint32_t kMagic = 0x07230203;
constexpr uint32_t kExecutionModeLocalSize = 17;
constexpr uint32_t kStorageClassPushConstant = 9;
constexpr uint32_t kHeaderWords = 5;

// What the reflection keeps of one id: a type's shape, a variable's pointer type, the decorations it asked for.
struct Id {
    uint32_t opcode = 0;
    std::vector<uint32_t> operands; // the instruction's words after the result id
    bool non_writable = false, non_readable = false;
    int64_t binding = -1, descriptor_set = -1;
    std::vector<uint32_t> member_offsets;
    std::vector<bool> member_non_writable, member_non_readable;
    std::vector<std::string> member_names;
};

// A literal string operand: nul-terminated UTF-8 packed into words.
std::string literal_string(std::span<const uint32_t> words) {
    std::string s(words.size() * 4, '\0');
    std::memcpy(s.data(), words.data(), s.size());
    s.resize(std::strlen(s.c_str()));
    return s;
}

template <typename T> void set_member(std::vector<T>& v, uint32_t member, T value) {
    if (v.size() <= member) v.resize(member + 1, T{});
    v[member] = value;
}

struct Module {
    std::unordered_map<uint32_t, Id> ids;
    std::vector<uint32_t> variables;
    std::array<uint32_t, 3> local_size{};
};

// OpVariable names its result type before its result id; the types this reflection reads begin with the result id.
bool has_result_type(uint32_t opcode) { return opcode == op::variable; }

void record_decoration(Id& target, std::span<const uint32_t> w) {
    switch (w[0]) {
    case decoration::non_writable: target.non_writable = true; break;
    case decoration::non_readable: target.non_readable = true; break;
    case decoration::binding: target.binding = w.size() > 1 ? w[1] : -1; break;
    case decoration::descriptor_set: target.descriptor_set = w.size() > 1 ? w[1] : -1; break;
    default: break;
    }
}

void record_member_decoration(Id& s, uint32_t member, std::span<const uint32_t> w) {
    switch (w[0]) {
    case decoration::non_writable: set_member(s.member_non_writable, member, true); break;
    case decoration::non_readable: set_member(s.member_non_readable, member, true); break;
    case decoration::offset:
        if (w.size() > 1) set_member(s.member_offsets, member, w[1]);
        break;
    default: break;
    }
}

Result<Module> parse(std::span<const uint32_t> spirv) {
    if (spirv.size() < kHeaderWords || spirv[0] != kMagic)
        return make_error(ErrorCode::internal, "not a SPIR-V module (bad magic number)");
    Module m;
    for (size_t pos = kHeaderWords; pos < spirv.size();) {
        const uint32_t opcode = spirv[pos] & 0xFFFFu;
        const uint32_t count = spirv[pos] >> 16;
        if (count == 0 || pos + count > spirv.size())
            return make_error(ErrorCode::internal, "truncated SPIR-V instruction at word " + std::to_string(pos));
        const std::span<const uint32_t> w = spirv.subspan(pos + 1, count - 1);
        pos += count;
        switch (opcode) {
        case op::member_name:
            if (w.size() >= 3) set_member(m.ids[w[0]].member_names, w[1], literal_string(w.subspan(2)));
            break;
        case op::execution_mode:
            if (w.size() >= 5 && w[1] == kExecutionModeLocalSize) m.local_size = {w[2], w[3], w[4]};
            break;
        case op::decorate:
            if (w.size() >= 2) record_decoration(m.ids[w[0]], w.subspan(1));
            break;
        case op::member_decorate:
            if (w.size() >= 3) record_member_decoration(m.ids[w[0]], w[1], w.subspan(2));
            break;
        case op::type_int:
        case op::type_float:
        case op::type_vector:
        case op::type_struct:
        case op::type_pointer:
        case op::variable: {
            // Types put their result id first; OpVariable puts its result type first.
            if (w.size() < (has_result_type(opcode) ? 2u : 1u)) break;
            const uint32_t result = has_result_type(opcode) ? w[1] : w[0];
            Id& id = m.ids[result];
            id.opcode = opcode;
            id.operands.clear();
            if (has_result_type(opcode)) {
                id.operands = {w[0]};
                id.operands.insert(id.operands.end(), w.begin() + 2, w.end());
                m.variables.push_back(result);
            } else {
                id.operands.assign(w.begin() + 1, w.end());
            }
            break;
        }
        default: break;
        }
    }
    return m;
}

// The struct a variable points at (its pointer type's pointee), or nullptr.
const Id* pointee(const Module& m, const Id& variable) {
    auto ptr = m.ids.find(variable.operands.at(0));
    if (ptr == m.ids.end() || ptr->second.opcode != op::type_pointer || ptr->second.operands.size() < 2) return nullptr;
    auto s = m.ids.find(ptr->second.operands[1]);
    return s == m.ids.end() || s->second.opcode != op::type_struct ? nullptr : &s->second;
}

// Bytes of a 32-bit scalar or vector type; 0 for anything else.
uint32_t scalar_or_vector_bytes(const Module& m, uint32_t type) {
    auto t = m.ids.find(type);
    if (t == m.ids.end()) return 0;
    const Id& id = t->second;
    if ((id.opcode == op::type_int || id.opcode == op::type_float) && !id.operands.empty() && id.operands[0] == 32)
        return 4;
    if (id.opcode == op::type_vector && id.operands.size() >= 2)
        return scalar_or_vector_bytes(m, id.operands[0]) * id.operands[1];
    return 0;
}

bool all_members(const std::vector<bool>& flags, size_t members) {
    return members > 0 && flags.size() >= members &&
           std::all_of(flags.begin(), flags.begin() + static_cast<std::ptrdiff_t>(members), std::identity{});
}

Status add_push_block(const Module& m, const Id& block, ShaderInterface& out) {
    const size_t members = block.operands.size();
    for (uint32_t i = 0; i < members; ++i) {
        const uint32_t bytes = scalar_or_vector_bytes(m, block.operands[i]);
        if (bytes == 0 || i >= block.member_offsets.size())
            return make_error(ErrorCode::internal, "push-constant member " + std::to_string(i) +
                                                       " is not a 32-bit scalar or vector with an offset");
        PushMember member{i < block.member_names.size() ? block.member_names[i] : std::string(),
                          block.member_offsets[i], bytes};
        out.push_bytes = std::max(out.push_bytes, member.offset + member.size);
        out.push_members.push_back(std::move(member));
    }
    return {};
}

Status add_storage_buffer(const Id& variable, const Id& block, ShaderInterface& out) {
    if (variable.descriptor_set != 0 || variable.binding < 0 || variable.binding > 31)
        return make_error(ErrorCode::internal, "a buffer at set " + std::to_string(variable.descriptor_set) +
                                                   " binding " + std::to_string(variable.binding) +
                                                   "; the kernels use set 0, bindings 0..31");
    const uint32_t bit = 1u << static_cast<uint32_t>(variable.binding);
    const size_t members = block.operands.size();
    const bool writable = !variable.non_writable && !all_members(block.member_non_writable, members);
    const bool readable = !variable.non_readable && !all_members(block.member_non_readable, members);
    // Aliased views of one binding: it is written if any view may write it, read if any view may read it.
    if (writable) out.write_mask |= bit;
    if (readable) out.read_write_mask |= bit; // masked with write_mask below
    out.binding_count = std::max(out.binding_count, static_cast<uint32_t>(variable.binding) + 1);
    return {};
}

} // namespace

Result<ShaderInterface> reflect_shader_interface(std::span<const uint32_t> spirv) {
    auto parsed = parse(spirv);
    if (!parsed) return parsed.take_error();
    const Module& m = parsed.value();
    ShaderInterface out;
    out.local_size = m.local_size;
    for (uint32_t v : m.variables) {
        const Id& variable = m.ids.at(v);
        const Id* block = pointee(m, variable);
        if (!block) continue;
        const uint32_t storage_class = variable.operands.size() > 1 ? variable.operands[1] : 0;
        if (storage_class == kStorageClassPushConstant) {
            VKMHA_TRY(add_push_block(m, *block, out));
        } else if (variable.binding >= 0) {
            VKMHA_TRY(add_storage_buffer(variable, *block, out));
        }
    }
    out.read_write_mask &= out.write_mask;
    return out;
}

} // namespace vkmha
