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

# easel_include_root(target DIR...): gives `target` a public include root that holds only the named
# source folders (as links), so that "<folder>/<header>.h" resolves for the target and for what
# links it, and an include of a layer the target does not link fails to compile. One root per
# target; the link graph is the layer graph (see ARCHITECTURE.md).
function(easel_include_root target)
  set(root ${CMAKE_BINARY_DIR}/include/${target})
  file(MAKE_DIRECTORY ${root})
  foreach(dir ${ARGN})
    get_filename_component(name ${dir} NAME)
    if(IS_SYMLINK ${root}/${name})
      file(READ_SYMLINK ${root}/${name} current)
      if(NOT current STREQUAL dir)
        file(REMOVE ${root}/${name})
      endif()
    endif()
    if(NOT EXISTS ${root}/${name})
      file(CREATE_LINK ${dir} ${root}/${name} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PUBLIC ${root})
endfunction()
