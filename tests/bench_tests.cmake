# Smoke tests of the benchmarks: each runs in its quick form (about a second) and must print
# well-formed JSON lines with a positive ratio. They time things and fork processes pinned to
# cores, so they run alone (RUN_SERIAL) rather than disturb, or be disturbed by, other tests.
add_executable(bench_tests ${CMAKE_CURRENT_LIST_DIR}/bench_smoke_test.cpp)
target_link_libraries(bench_tests PRIVATE mstream_bench GTest::gtest_main mstream_warnings)
# The session benchmarks start `mstream leader` and `mstream site` daemons from this binary.
target_compile_definitions(bench_tests PRIVATE MSTREAM_BINARY="$<TARGET_FILE:mstream>")
add_dependencies(bench_tests mstream)
gtest_discover_tests(bench_tests DISCOVERY_TIMEOUT 30
  PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE LABELS bench)

# The command itself, end to end: JSON lines on stdout for every benchmark.
if(TARGET mstream)
  add_test(NAME BenchCli.AllQuickPrintsJsonLines COMMAND mstream bench all --json --quick)
  set_tests_properties(BenchCli.AllQuickPrintsJsonLines PROPERTIES
    TIMEOUT 180 RUN_SERIAL TRUE LABELS bench
    PASS_REGULAR_EXPRESSION "\"bench\":\"memory\",\"metric\":\"bytes_per_idle_path_end\""
    FAIL_REGULAR_EXPRESSION "mstream bench [a-z-]+: ")
  # Each session benchmark through the command, tiny: the daemons are this same binary, with
  # the benchmarks' C++ agent types registered from main(). ARGN: the benchmark's options.
  function(add_bench_cli_test name metric)
    add_test(NAME BenchCli.${name}QuickPrintsJsonLines
      COMMAND mstream bench ${name} --json --quick ${ARGN})
    set_tests_properties(BenchCli.${name}QuickPrintsJsonLines PROPERTIES
      TIMEOUT 30 RUN_SERIAL TRUE LABELS bench
      PASS_REGULAR_EXPRESSION "\"bench\":\"${name}\",\"metric\":\"${metric}\""
      FAIL_REGULAR_EXPRESSION "mstream bench [a-z-]+: ")
  endfunction()
  add_bench_cli_test(move mean_per_hop --hops 20)
  add_bench_cli_test(moving-pipeline consume_time_k1000_drop_10% --messages 10)
  add_bench_cli_test(append-tcl time_per_tcl_handler --messages 500)
  add_bench_cli_test(memory bytes_per_tcl_agent --streams 50)
  add_bench_cli_test(failover failover_ms)
  add_bench_cli_test(durable durable_msgs_per_s)
endif()
