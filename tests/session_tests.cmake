# End-to-end tests of what a user sees: the mstream binary itself, run as a user runs it
# (`mstream run` scripts, `mstream leader` + `mstream site` + `mstream shell` + `mstream status`),
# checked only through its exit codes, its output and the processes it leaves. Each test starts
# its own sessions on loopback (port 0), bounds every wait, and kills and reaps what it started,
# so the tests are independent and may run in parallel (ctest -j2).
if(NOT TARGET mstream)
  return()
endif()

add_executable(session_tests
  ${CMAKE_CURRENT_LIST_DIR}/session_commands_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_destroy_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_handlers_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_moves_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_processes_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_daemons_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_failures_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_policy_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_limits_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_security_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/session_sandbox_test.cpp)
target_link_libraries(session_tests PRIVATE GTest::gtest_main mstream_warnings)
target_include_directories(session_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
# The binary under test; $MSTREAM_BINARY overrides it at run time.
target_compile_definitions(session_tests PRIVATE
  MSTREAM_BINARY="$<TARGET_FILE:mstream>"
  MSTREAM_EXAMPLES_DIR="${PROJECT_SOURCE_DIR}/examples")
add_dependencies(session_tests mstream)
gtest_discover_tests(session_tests DISCOVERY_TIMEOUT 30
  PROPERTIES TIMEOUT 120 LABELS session)
