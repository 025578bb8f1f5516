# Compiler settings shared by all of Easel's own targets.
find_program(EASEL_CCACHE ccache)
if(EASEL_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${EASEL_CCACHE}")
  message(STATUS "ccache: ${EASEL_CCACHE}")
endif()

# easel_warnings(target): warnings on for our code only; third-party headers come in as SYSTEM.
function(easel_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
endfunction()

# Link jemalloc into executables: glibc's malloc made a libtorch UNet step ~7x slower here
# (first-touch page faults are slow; jemalloc keeps and reuses pages).
function(easel_use_jemalloc target)
  if(TARGET PkgConfig::JEMALLOC)
    target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/packaging/cmake/jemalloc_config.cpp)
  endif()
endfunction()
