# SPDX-License-Identifier: MIT
# Libc-only targets: what forkd-spawner (and, later, event-mode workers) may link. Their processes
# fork once per connection, and fork(2) costs in proportion to the mappings a process holds, so
# they link libc and the C++ runtime alone. The build enforces it twice:
# - link: such a target links only other libc-only targets (forkd_libc_only_link refuses others);
# - compile: the headers of libsystemd, Boost and nlohmann-json are shadowed by ones that #error,
#   so a unit that includes one fails with a message naming this file.
set(FORKD_LIBC_ONLY_POISON ${CMAKE_CURRENT_LIST_DIR}/libc_only_poison)

function(forkd_libc_only target)
  get_target_property(kind ${target} TYPE)
  if(NOT kind STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} BEFORE PRIVATE ${FORKD_LIBC_ONLY_POISON})
  endif()
  set_property(TARGET ${target} PROPERTY FORKD_LIBC_ONLY TRUE)
endfunction()

# target_link_libraries for a libc-only target: every dependency must be libc-only too.
function(forkd_libc_only_link target)
  foreach(dependency ${ARGN})
    get_property(libc_only TARGET ${dependency} PROPERTY FORKD_LIBC_ONLY)
    if(NOT libc_only)
      message(FATAL_ERROR "${target} is libc-only and may not link ${dependency}")
    endif()
  endforeach()
  get_target_property(kind ${target} TYPE)
  if(kind STREQUAL "INTERFACE_LIBRARY")
    target_link_libraries(${target} INTERFACE ${ARGN})
  else()
    target_link_libraries(${target} PUBLIC ${ARGN})
  endif()
endfunction()

# libevent_core is the one library beyond libc that libc-only targets may link: it is C, needs
# nothing but libc, and event-mode workers and the proxy handler are built on its bufferevents.
# It is linked in statically (Debian's libevent_core.a is PIC), like the C++ runtime: forkd-spawner
# forks for every built-in connection, and a shared libevent would add its mappings to every one
# of those forks and exits; linked in, its ~100 KB of code is part of the binary's own mappings.
# The cost, as for libstdc++: a libevent fix reaches forkd with a rebuild. Without the archive
# (or in a sanitizer build) the shared library is used.
find_library(FORKD_LIBEVENT_CORE_ARCHIVE NAMES libevent_core.a HINTS ${LIBEVENT_CORE_LIBRARY_DIRS})
add_library(forkd_libevent INTERFACE)
if(FORKD_LIBEVENT_CORE_ARCHIVE AND NOT FORKD_SANITIZE)
  target_include_directories(forkd_libevent INTERFACE ${LIBEVENT_CORE_INCLUDE_DIRS})
  target_link_libraries(forkd_libevent INTERFACE ${FORKD_LIBEVENT_CORE_ARCHIVE})
else()
  target_link_libraries(forkd_libevent INTERFACE PkgConfig::LIBEVENT_CORE)
endif()
set_property(TARGET forkd_libevent PROPERTY FORKD_LIBC_ONLY TRUE)
