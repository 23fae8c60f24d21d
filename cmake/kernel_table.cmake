# The kernel table: shaders/CMakeLists.txt calls vkmha_kernel() once per SPIR-V variant, and that list is the only
# one. Each row compiles its GLSL to SPIR-V, embeds it (embed_spirv.cmake), and vkmha_write_kernel_table() then
# writes what the C++ side needs into the build tree (kernel_table_generated.{h,cpp}):
#   - enum class Kernel: every kernel of the table, in the order of its first row;
#   - kernel_workgroup_size(Kernel): the WORKGROUP of the rows that give one (the planner's grid divisors);
#   - the SPIR-V externs and one KernelVariantRow per row (host/kernel_table.h), which ShaderLibrary builds from.
# A row's variant must name an enumerator of host/kernel_table.h's enum class Variant (the generated source does
# not compile otherwise), and a test checks each WORKGROUP against the local size the SPIR-V declares.

set_property(GLOBAL PROPERTY VKMHA_KERNEL_ROWS "")
set_property(GLOBAL PROPERTY VKMHA_KERNEL_SPIRV_SOURCES "")

# vkmha_kernel(<kernel> <variant> <source.comp> [LANE_TILES] [SUBGROUP_ARITHMETIC] [WORKGROUP x [y [z]]]
#              [DEFINES -D...])
#   LANE_TILES           the lane-tiled kernel for CPU implementations (AttentionTiling::lanes, LinearTiling::lanes)
#   SUBGROUP_ARITHMETIC  needs subgroup arithmetic in compute; preferred over the kernel's row without it
#   WORKGROUP            the GLSL's default local size, where the planner divides a grid by it
#   DEFINES              glslang defines of this variant
# The variant's name (SPIR-V symbol, pipeline label) is <kernel>[_lanes][_subgroup][_<variant> unless f32].
function(vkmha_kernel kernel variant source)
    cmake_parse_arguments(PARSE_ARGV 3 row "LANE_TILES;SUBGROUP_ARITHMETIC" "" "WORKGROUP;DEFINES")
    if(row_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "vkmha_kernel(${kernel} ${variant}): unknown arguments ${row_UNPARSED_ARGUMENTS}")
    endif()
    set(name ${kernel})
    if(row_LANE_TILES)
        string(APPEND name "_lanes")
    endif()
    if(row_SUBGROUP_ARITHMETIC)
        string(APPEND name "_subgroup")
    endif()
    if(NOT variant STREQUAL "f32")
        string(APPEND name "_${variant}")
    endif()
    # A row is one list element: its fields joined by |, the workgroup size as XxYxZ.
    string(JOIN "x" workgroup ${row_WORKGROUP})
    get_property(rows GLOBAL PROPERTY VKMHA_KERNEL_ROWS)
    foreach(other IN LISTS rows)
        string(REPLACE "|" ";" fields "${other}")
        list(GET fields 0 other_name)
        list(GET fields 1 other_kernel)
        list(GET fields 5 other_workgroup)
        if(other_name STREQUAL name)
            message(FATAL_ERROR "vkmha_kernel: two rows make the variant ${name}")
        endif()
        if(other_kernel STREQUAL kernel AND workgroup AND other_workgroup AND NOT other_workgroup STREQUAL workgroup)
            message(FATAL_ERROR "vkmha_kernel(${kernel}): rows give different workgroup sizes")
        endif()
    endforeach()
    foreach(flag LANE_TILES SUBGROUP_ARITHMETIC)
        if(row_${flag})
            set(${flag} true)
        else()
            set(${flag} false)
        endif()
    endforeach()
    set_property(GLOBAL APPEND PROPERTY VKMHA_KERNEL_ROWS
                 "${name}|${kernel}|${variant}|${LANE_TILES}|${SUBGROUP_ARITHMETIC}|${workgroup}")

    set(spv ${CMAKE_CURRENT_BINARY_DIR}/${name}.spv)
    set(cpp ${CMAKE_CURRENT_BINARY_DIR}/${name}_spv.cpp)
    string(JOIN " " from ${source} ${row_DEFINES})
    add_custom_command(
        OUTPUT ${spv}
        COMMAND ${GLSLANG_VALIDATOR} -V --target-env vulkan1.1 -I${CMAKE_CURRENT_SOURCE_DIR}
                --depfile ${spv}.d ${row_DEFINES} -o ${spv} ${CMAKE_CURRENT_SOURCE_DIR}/${source}
        DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${source}
        DEPFILE ${spv}.d
        COMMENT "glslang ${name}"
        VERBATIM)
    add_custom_command(
        OUTPUT ${cpp}
        COMMAND ${CMAKE_COMMAND} -DSPV=${spv} -DOUT=${cpp} -DNAME=${name} "-DFROM=${from}"
                -P ${PROJECT_SOURCE_DIR}/cmake/embed_spirv.cmake
        DEPENDS ${spv} ${PROJECT_SOURCE_DIR}/cmake/embed_spirv.cmake
        VERBATIM)
    set_property(GLOBAL APPEND PROPERTY VKMHA_KERNEL_SPIRV_SOURCES ${cpp})
endfunction()

# Writes <dir>/kernel_table_generated.{h,cpp} from the rows (only when their text changes, so nothing rebuilds
# needlessly) and creates <target>: a static library of the embedded SPIR-V. The generated .cpp includes
# host/kernel_table.h, so it is returned in <sources_var> for the host library to compile.
function(vkmha_write_kernel_table target dir sources_var)
    get_property(rows GLOBAL PROPERTY VKMHA_KERNEL_ROWS)
    set(kernels "")
    set(externs "")
    set(variant_rows "")
    set(workgroup_cases "")
    foreach(row IN LISTS rows)
        string(REPLACE "|" ";" fields "${row}")
        list(GET fields 0 name)
        list(GET fields 1 kernel)
        list(GET fields 2 variant)
        list(GET fields 3 lane_tiles)
        list(GET fields 4 subgroup)
        list(GET fields 5 workgroup)
        string(REPLACE "x" ";" workgroup "${workgroup}")
        if(NOT kernel IN_LIST kernels)
            list(APPEND kernels ${kernel})
        endif()
        if(workgroup AND NOT workgroup_${kernel})
            list(APPEND workgroup 1 1)
            list(SUBLIST workgroup 0 3 workgroup_${kernel})
        endif()
        string(APPEND externs "extern const uint32_t ${name}[];\nextern const size_t ${name}_words;\n")
        string(APPEND variant_rows "    {Kernel::${kernel}, Variant::${variant}, \"${name}\", spirv::${name}, "
                                   "&spirv::${name}_words, ${subgroup}, ${lane_tiles}},\n")
    endforeach()
    foreach(kernel IN LISTS kernels)
        if(workgroup_${kernel})
            string(JOIN ", " size ${workgroup_${kernel}})
            string(APPEND workgroup_cases "    case Kernel::${kernel}: return {${size}};\n")
        endif()
    endforeach()
    string(JOIN ",\n    " kernel_enumerators ${kernels})
    string(JOIN "\", \"" kernel_names ${kernels})
    list(LENGTH rows row_count)
    set(banner "// Generated from shaders/CMakeLists.txt (the kernel table) by cmake/kernel_table.cmake; do not edit.")

    file(CONFIGURE OUTPUT ${dir}/kernel_table_generated.h @ONLY CONTENT "${banner}
// Included by host/kernel_table.h, which declares the rows.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vkmha {

// Every kernel of the table, in the order of its first row.
enum class Kernel : uint32_t {
    ${kernel_enumerators},
    count
};

constexpr std::array<const char*, static_cast<size_t>(Kernel::count)> kKernelNames = {\"${kernel_names}\"};

constexpr size_t kKernelVariantRowCount = ${row_count};

// A kernel's WORKGROUP from the table (its GLSL's default local size, x y z), or zeros where the table gives none:
// the host specialises that kernel's workgroup itself or dispatches one workgroup per row.
constexpr std::array<uint32_t, 3> kernel_workgroup_size(Kernel k) {
    switch (k) {
${workgroup_cases}    default: return {0, 0, 0};
    }
}

} // namespace vkmha
")
    file(CONFIGURE OUTPUT ${dir}/kernel_table_generated.cpp @ONLY CONTENT "${banner}
#include \"kernel_table.h\"

namespace vkmha::spirv {
${externs}} // namespace vkmha::spirv

namespace vkmha {

const KernelVariantRow kKernelVariantRows[kKernelVariantRowCount] = {
${variant_rows}};

} // namespace vkmha
")
    get_property(spirv_sources GLOBAL PROPERTY VKMHA_KERNEL_SPIRV_SOURCES)
    add_library(${target} STATIC ${spirv_sources})
    target_include_directories(${target} INTERFACE ${dir})
    set(${sources_var} ${dir}/kernel_table_generated.cpp PARENT_SCOPE)
endfunction()
