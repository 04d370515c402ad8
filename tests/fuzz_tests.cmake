# Runs every libFuzzer target for a bounded time as part of the test suite. The fuzz build
# needs clang, while this build may use another compiler, so a setup test builds the targets
# in a separate directory (fuzz/ configured standalone: only the wire and proto layers), and
# one test per target fuzzes it for 30 seconds; the two can run side by side (ctest -j2).
if(MSTREAM_FUZZ)
  return()  # the fuzz build itself: no recursion
endif()

set(mstream_fuzz_script ${CMAKE_CURRENT_LIST_DIR}/../fuzz/run_fuzzers.sh)
set(mstream_fuzz_dir ${CMAKE_BINARY_DIR}/fuzz-build)

add_test(NAME fuzz.build COMMAND bash ${mstream_fuzz_script} build ${mstream_fuzz_dir})
set_tests_properties(fuzz.build PROPERTIES
  FIXTURES_SETUP mstream_fuzz_build
  ENVIRONMENT "CMAKE_COMMAND=${CMAKE_COMMAND}"
  SKIP_RETURN_CODE 77
  TIMEOUT 600
  LABELS fuzz)

foreach(target fuzz_datagram_decode fuzz_transport fuzz_control_decode fuzz_sealed_decode)
  add_test(NAME fuzz.${target}
    COMMAND bash ${mstream_fuzz_script} run ${mstream_fuzz_dir} ${target} 30)
  set_tests_properties(fuzz.${target} PROPERTIES
    FIXTURES_REQUIRED mstream_fuzz_build
    SKIP_RETURN_CODE 77
    TIMEOUT 300
    LABELS fuzz)
endforeach()
