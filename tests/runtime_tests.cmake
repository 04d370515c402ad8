# Tests of the real driver (src/runtime): endpoints on loopback UDP, in one process and in
# two, and under hostile traffic. Every wait in them is bounded.
add_executable(runtime_tests
  runtime_drop_log_test.cpp
  runtime_endpoint_test.cpp
  runtime_malformed_test.cpp
  runtime_node_loop_test.cpp
  runtime_process_test.cpp
  runtime_sqlite_store_test.cpp
  runtime_worker_pool_test.cpp)
target_link_libraries(runtime_tests PRIVATE mstream_runtime GTest::gtest_main mstream_warnings)
target_include_directories(runtime_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
gtest_discover_tests(runtime_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120 LABELS runtime)

# The user-facing demo, when the mstream command is built (it needs every subcommand).
if(TARGET mstream)
  add_test(NAME Demo.TwoProcessesExchangeAndPrintASummary
           COMMAND mstream demo --messages 2000)
  set_tests_properties(Demo.TwoProcessesExchangeAndPrintASummary PROPERTIES
    TIMEOUT 60 LABELS runtime PASS_REGULAR_EXPRESSION "demo: ok")
endif()
