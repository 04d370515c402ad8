# Unit tests of the Tcl binding: the script commands against a fake ScriptApi, and the agent host.
add_executable(tcl_tests
  ${CMAKE_CURRENT_LIST_DIR}/tcl_commands_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tcl_host_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tcl_run_limits_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tcl_sandbox_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tcl_value_guards_test.cpp)
target_link_libraries(tcl_tests PRIVATE mstream_tcl mstream_warnings GTest::gtest_main)
gtest_discover_tests(tcl_tests DISCOVERY_TIMEOUT 30)
