# Install rules: header, libvkmha (soname-versioned), the CMake package (vkmha::vkmha), vkmha.pc and the tools.
# Included by the top-level CMakeLists.txt when VKMHA_INSTALL is on.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(VKMHA_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/vkmha CACHE STRING "Where vkmhaConfig.cmake goes")

install(TARGETS vkmha EXPORT vkmhaTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT vkmha_runtime NAMELINK_COMPONENT vkmha_development
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT vkmha_development)
install(FILES ${PROJECT_SOURCE_DIR}/plugin/include/vkmha/vkmha.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vkmha COMPONENT vkmha_development)

install(EXPORT vkmhaTargets NAMESPACE vkmha:: DESTINATION ${VKMHA_INSTALL_CMAKEDIR} COMPONENT vkmha_development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/vkmhaConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/vkmhaConfig.cmake INSTALL_DESTINATION ${VKMHA_INSTALL_CMAKEDIR})
# Same major, and at least the minor asked for: the function table only grows within a major version.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/vkmhaConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/vkmhaConfig.cmake ${PROJECT_BINARY_DIR}/vkmhaConfigVersion.cmake
        DESTINATION ${VKMHA_INSTALL_CMAKEDIR} COMPONENT vkmha_development)

# pkg-config: the prefix is found from the .pc file's own folder, so `cmake --install --prefix` and a moved prefix
# both work (absolute install folders stay absolute).
set(VKMHA_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${VKMHA_PC_DIR}")
    set(VKMHA_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
    file(RELATIVE_PATH pc_to_prefix /prefix/${VKMHA_PC_DIR} /prefix)
    string(REGEX REPLACE "/$" "" pc_to_prefix "${pc_to_prefix}")
    set(VKMHA_PC_PREFIX "\${pcfiledir}/${pc_to_prefix}")
endif()
foreach(dir IN ITEMS LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
        set(VKMHA_PC_${dir} "${CMAKE_INSTALL_${dir}}")
    else()
        set(VKMHA_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
    endif()
endforeach()
if(VKMHA_SHARED)
    set(VKMHA_PC_LIBS_PRIVATE "")
else()
    # libvkmha.a still needs the C++ runtime and dlopen from the final link (pkg-config --static --libs).
    set(VKMHA_PC_LIBS_PRIVATE "-lstdc++ -lm")
    foreach(lib IN LISTS CMAKE_DL_LIBS)
        string(APPEND VKMHA_PC_LIBS_PRIVATE " -l${lib}")
    endforeach()
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/vkmha.pc.in ${PROJECT_BINARY_DIR}/vkmha.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/vkmha.pc DESTINATION ${VKMHA_PC_DIR}
        COMPONENT vkmha_development)

# The tools, when built, find libvkmha in the prefix's library folder (frame-loop dlopens it from ../lib itself).
set(vkmha_tools vkmha-run vkmha-make-example vkmha-compare vkmha-viz vkmha-bench frame-loop)
foreach(tool IN LISTS vkmha_tools)
    if(TARGET ${tool})
        file(RELATIVE_PATH bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
        set_target_properties(${tool} PROPERTIES INSTALL_RPATH "$ORIGIN/${bin_to_lib}")
        install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT vkmha_tools)
    endif()
endforeach()
