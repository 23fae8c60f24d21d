// Tests for the GLSL <-> C++ boundary read from the SPIR-V itself (host/spirv_reflect.h) and for the kernel table
// generated from shaders/CMakeLists.txt: every variant's bindings, write masks, push block and workgroup size.
#include "shader_library.h"
#include "spirv_reflect.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace vkmha;

namespace {

ShaderInterface reflect(const KernelVariantRow& row) {
    auto reflected = reflect_shader_interface(row.spirv());
    REQUIRE_MESSAGE(reflected.ok(), row.name << ": " << (reflected.ok() ? "" : reflected.error().message));
    return reflected.value();
}

uint32_t mask(std::initializer_list<uint32_t> bindings) {
    uint32_t m = 0;
    for (uint32_t b : bindings) m |= 1u << b;
    return m;
}

std::vector<std::string> names(const std::vector<PushMember>& members) {
    std::vector<std::string> out;
    for (const PushMember& m : members) out.push_back(m.name);
    return out;
}

} // namespace

TEST_SUITE("shader_interface") {
    TEST_CASE("table: every kernel has an f32 row and rows name kernels the enum knows") {
        for (uint32_t k = 0; k < kKernelCount; ++k) {
            CAPTURE(kernel_name(static_cast<Kernel>(k)));
            CHECK(has_variant(static_cast<Kernel>(k), Variant::f32));
            CHECK_FALSE(kernel_spirv(static_cast<Kernel>(k), Variant::f32).empty());
        }
        for (const KernelVariantRow& row : kKernelVariantRows) {
            CAPTURE(row.name);
            CHECK(static_cast<uint32_t>(row.kernel) < kKernelCount);
            CHECK(static_cast<uint32_t>(row.variant) < kVariantCount);
            CHECK(std::string(row.name).rfind(kernel_name(row.kernel), 0) == 0);
        }
        CHECK(kernel_spirv(Kernel::softmax, Variant::f32, false, true).data() !=
              kernel_spirv(Kernel::softmax, Variant::f32).data());
        CHECK(kernel_spirv(Kernel::softmax, Variant::f16).empty());
    }

    TEST_CASE("reflection: every variant's bindings and push block fit the shared pipeline layout") {
        for (const KernelVariantRow& row : kKernelVariantRows) {
            CAPTURE(row.name);
            const ShaderInterface si = reflect(row);
            CHECK(si.binding_count >= 1);
            CHECK(si.binding_count <= kMaxBindings);
            CHECK(si.write_mask != 0); // every kernel writes something
            CHECK((si.write_mask >> si.binding_count) == 0);
            CHECK((si.read_write_mask & ~si.write_mask) == 0);
            CHECK(si.push_bytes > 0);
            CHECK(si.push_bytes <= kMaxPushBytes);
            uint32_t end = 0;
            for (const PushMember& m : si.push_members) {
                CAPTURE(m.name);
                CHECK(m.offset == end); // tightly packed 4-byte members, as the C++ mirrors assume
                CHECK(m.size == 4);
                CHECK_FALSE(m.name.empty());
                end = m.offset + m.size;
            }
            CHECK(end == si.push_bytes);
        }
    }

    TEST_CASE("reflection: every variant of a kernel declares what the kernel reports") {
        for (const KernelVariantRow& row : kKernelVariantRows) {
            CAPTURE(row.name);
            const ShaderInterface si = reflect(row);
            CHECK(si.binding_count == kernel_binding_count(row.kernel));
            CHECK(si.write_mask == kernel_write_mask(row.kernel));
            CHECK(si.read_write_mask == kernel_read_write_mask(row.kernel));
            const ShaderInterface plain = reflect_shader_interface(kernel_spirv(row.kernel, Variant::f32)).value();
            CHECK(si.push_members == plain.push_members);
        }
    }

    TEST_CASE("reflection: write masks follow the GLSL's readonly and writeonly") {
        // attention.comp: O (3) and LSE (6) writeonly, the partial records (7) read and written, the rest readonly.
        CHECK(kernel_binding_count(Kernel::attention) == 10); // 9: the KV-cache sequence records
        CHECK(kernel_write_mask(Kernel::attention) == mask({3, 6, 7}));
        CHECK(kernel_read_write_mask(Kernel::attention) == mask({7}));
        // linear.comp: Y, K and V out (packed Q/K/V), all writeonly.
        CHECK(kernel_binding_count(Kernel::linear) == 7);
        CHECK(kernel_write_mask(Kernel::linear) == mask({3, 5, 6}));
        CHECK(kernel_read_write_mask(Kernel::linear) == 0);
        // softmax.comp: scores normalized in place, weights writeonly; 3: the head mask's factors (1.3).
        CHECK(kernel_binding_count(Kernel::softmax) == 4);
        CHECK(kernel_write_mask(Kernel::softmax) == mask({0, 1}));
        CHECK(kernel_read_write_mask(Kernel::softmax) == mask({0}));
        // rope.comp: Q or K rows rotated in place.
        CHECK(kernel_write_mask(Kernel::rope) == mask({0}));
        CHECK(kernel_read_write_mask(Kernel::rope) == mask({0}));
    }

    TEST_CASE("reflection: push-constant layout names the GLSL's members at their offsets") {
        const std::vector<PushMember> attention = push_constant_layout(Kernel::attention, Variant::f32);
        REQUIRE(attention.size() == 30);
        CHECK(names(attention)[0] == "B");
        CHECK(names(attention)[6] == "scale");
        CHECK(attention[6].offset == 24);
        CHECK(names(attention).back() == "head_factors"); // 1.3: the head mask
        CHECK(push_constant_bytes(Kernel::attention, Variant::f32) == 120);
        CHECK(push_constant_layout(Kernel::attention, Variant::f32, true) == attention);
        const std::vector<PushMember> linear = push_constant_layout(Kernel::linear, Variant::f16_in);
        REQUIRE(linear.size() == 16);
        CHECK(linear[13] == PushMember{"q_cols", 52, 4});
        CHECK(push_constant_layout(Kernel::softmax, Variant::f16).empty()); // no such row
    }

    TEST_CASE("table: each WORKGROUP is the local size the SPIR-V declares") {
        for (const KernelVariantRow& row : kKernelVariantRows) {
            CAPTURE(row.name);
            const auto table = kernel_workgroup_size(row.kernel);
            if (table[0] == 0) continue; // the host specialises it or dispatches per row
            CHECK(reflect(row).local_size == table);
        }
        CHECK(kernel_workgroup_size(Kernel::scores) == std::array<uint32_t, 3>{16, 16, 1});
        CHECK(kernel_workgroup_size(Kernel::combine)[0] == 64);
    }

    TEST_CASE("reflection: malformed modules are refused, not misread") {
        CHECK_FALSE(reflect_shader_interface({}).ok());
        const uint32_t not_spirv[] = {1, 2, 3, 4, 5, 6};
        CHECK_FALSE(reflect_shader_interface(not_spirv).ok());
        std::vector<uint32_t> truncated(kernel_spirv(Kernel::copy, Variant::f32).begin(),
                                        kernel_spirv(Kernel::copy, Variant::f32).end());
        truncated[5] |= 0xFFFFu << 16; // the first instruction claims more words than the module has
        CHECK_FALSE(reflect_shader_interface(truncated).ok());
    }
}

namespace {

// The C++ mirror of a kernel's push-constant block (host/push_constants.h), as {GLSL name, byte offset} rows.
std::vector<PushField> cpp_push_layout(Kernel k) {
    auto rows = [](const auto& layout) { return std::vector<PushField>(layout.begin(), layout.end()); };
    switch (k) {
    case Kernel::linear: return rows(kLinearParamsLayout);
    case Kernel::scores: return rows(kScoresParamsLayout);
    case Kernel::softmax: return rows(kSoftmaxParamsLayout);
    case Kernel::apply: return rows(kApplyParamsLayout);
    case Kernel::average_heads: return rows(kAverageHeadsParamsLayout);
    case Kernel::attention: return rows(kAttentionParamsLayout);
    case Kernel::combine: return rows(kCombineParamsLayout);
    case Kernel::copy: return rows(kCopyParamsLayout);
    case Kernel::rope: return rows(kRopeParamsLayout);
    case Kernel::probs_from_lse: return rows(kProbsFromLseParamsLayout);
    default: return {};
    }
}

} // namespace

TEST_SUITE("shader_interface") {
    // A push block filled on the host and read on the GPU under different names or offsets is a silent wrong answer:
    // every variant's SPIR-V must declare exactly the members the C++ mirror writes, at the same offsets.
    TEST_CASE("push blocks: every variant's SPIR-V matches its C++ mirror member for member") {
        for (const KernelVariantRow& row : kKernelVariantRows) {
            CAPTURE(row.name);
            const std::vector<PushField> cpp = cpp_push_layout(row.kernel);
            REQUIRE_FALSE(cpp.empty());
            const std::vector<PushMember> spirv = reflect(row).push_members;
            REQUIRE(spirv.size() == cpp.size());
            for (size_t i = 0; i < cpp.size(); ++i) {
                CAPTURE(i);
                CHECK(spirv[i].name == cpp[i].name);
                CHECK(spirv[i].offset == cpp[i].offset);
                CHECK(spirv[i].size == 4u);
            }
        }
    }
}
