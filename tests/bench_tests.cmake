# Smoke tests of the benchmarks: each runs in its quick form (about a second) and must print
# well-formed JSON lines with a positive ratio. They time things and fork processes pinned to
# cores, so they run alone (RUN_SERIAL) rather than disturb, or be disturbed by, other tests.
add_executable(bench_tests ${CMAKE_CURRENT_LIST_DIR}/bench_smoke_test.cpp)
target_link_libraries(bench_tests PRIVATE mstream_bench GTest::gtest_main mstream_warnings)
gtest_discover_tests(bench_tests DISCOVERY_TIMEOUT 30
  PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE LABELS bench)

# The command itself, end to end: JSON lines on stdout for every benchmark.
if(TARGET mstream)
  add_test(NAME BenchCli.AllQuickPrintsJsonLines COMMAND mstream bench all --json --quick)
  set_tests_properties(BenchCli.AllQuickPrintsJsonLines PROPERTIES
    TIMEOUT 180 RUN_SERIAL TRUE LABELS bench
    PASS_REGULAR_EXPRESSION "\"bench\":\"memory\",\"metric\":\"bytes_per_idle_path_end\""
    FAIL_REGULAR_EXPRESSION "mstream bench [a-z]+: ")
endif()
