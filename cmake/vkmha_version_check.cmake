# Keeps the two version numbers one: project(vkmha VERSION X.Y.Z) must match VKMHA_HEADER_VERSION in vkmha.h.
function(vkmha_check_header_version header)
    file(STRINGS "${header}" line REGEX "^#define VKMHA_HEADER_VERSION ")
    if(NOT line MATCHES "VKMHA_API_VERSION_([0-9]+)_([0-9]+)")
        message(FATAL_ERROR "${header}: no '#define VKMHA_HEADER_VERSION VKMHA_API_VERSION_<major>_<minor>'")
    endif()
    if(NOT CMAKE_MATCH_1 EQUAL PROJECT_VERSION_MAJOR OR NOT CMAKE_MATCH_2 EQUAL PROJECT_VERSION_MINOR)
        message(FATAL_ERROR "vkmha.h describes API ${CMAKE_MATCH_1}.${CMAKE_MATCH_2} but project() says "
                            "${PROJECT_VERSION}: change both together")
    endif()
endfunction()
