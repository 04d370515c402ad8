# Tests of the process side of `mstream run` (src/runtime: LocalSession, OutputMerger), run
# against fake_daemon, a stand-in that keeps the daemon contract. Every wait in them is bounded
# and every process they start is reaped.
add_executable(fake_daemon fake_daemon.cpp)
target_link_libraries(fake_daemon PRIVATE mstream_warnings)

add_executable(launcher_tests launcher_test.cpp)
target_link_libraries(launcher_tests PRIVATE mstream_runtime GTest::gtest_main mstream_warnings)
target_compile_definitions(launcher_tests PRIVATE
  MSTREAM_FAKE_DAEMON="$<TARGET_FILE:fake_daemon>")
add_dependencies(launcher_tests fake_daemon)
gtest_discover_tests(launcher_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60 LABELS launcher)
