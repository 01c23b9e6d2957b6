# sluice_add_module(NAME SOURCES ... [DEPENDS ...] [PRIVATE_DEPENDS ...])
#
# Creates the library target sluice_<NAME> with the alias sluice::<NAME>:
# public headers in include/sluice/<NAME>/, sources in src/<NAME>/, the
# project's warning and sanitizer flags, and an entry in the install export.
# A module with no sources becomes an INTERFACE library.

function(sluice_apply_build_flags target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
      -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
      -Wno-unused-parameter)
    if(SLUICE_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
  # With optimisation, g++ 12 reports Asio's recycling allocator for
  # coroutine frames as a mismatched new and delete: a false positive.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-Wno-mismatched-new-delete>)
  endif()
endfunction()

# Sanitizer flags go on every target of this project (tests, examples and
# benchmarks too), so they are set once for the directory tree.
if(SLUICE_SANITIZE)
  add_compile_options(-fsanitize=${SLUICE_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${SLUICE_SANITIZE})
  if(SLUICE_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()

set(SLUICE_MODULES "" CACHE INTERNAL "Modules defined so far")

function(sluice_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  set(target sluice_${name})
  if(ARG_SOURCES)
    add_library(${target} ${ARG_SOURCES})
    target_include_directories(${target}
      PUBLIC
        $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
        $<INSTALL_INTERFACE:include>
      PRIVATE
        ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${target} PUBLIC ${ARG_DEPENDS} PRIVATE ${ARG_PRIVATE_DEPENDS})
    target_compile_features(${target} PUBLIC cxx_std_20)
    sluice_apply_build_flags(${target})
    set_target_properties(${target} PROPERTIES
      EXPORT_NAME ${name}
      POSITION_INDEPENDENT_CODE ON)
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:include>)
    target_link_libraries(${target} INTERFACE ${ARG_DEPENDS})
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  endif()
  add_library(sluice::${name} ALIAS ${target})
  install(TARGETS ${target} EXPORT sluiceTargets
    ARCHIVE DESTINATION lib LIBRARY DESTINATION lib)
  set(SLUICE_MODULES ${SLUICE_MODULES} ${name} CACHE INTERNAL "Modules defined so far")
endfunction()

# sluice_add_test(NAME SOURCES ... DEPENDS ... [LABELS ...])
#
# One GoogleTest program per module keeps link times low; each TEST becomes
# its own ctest entry so failures are reported one by one.
function(sluice_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPENDS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPENDS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(${name} PRIVATE
    SLUICE_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
  sluice_apply_build_flags(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  # gtest_discover_tests flattens PROPERTIES into one list, which splits a
  # list of labels (the second label became a property name). A script that
  # ctest reads after the discovered tests sets the labels instead.
  set(label_script ${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake)
  file(WRITE ${label_script}
    "foreach(test IN LISTS ${name}_TESTS)\n"
    "  set_tests_properties(\"\${test}\" PROPERTIES LABELS \"${ARG_LABELS}\")\n"
    "endforeach()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${label_script})
endfunction()
