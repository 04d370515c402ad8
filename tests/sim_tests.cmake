# Tests of the deterministic simulator: its network model and checkers in isolation, whole
# runs against the real core, the 2,048-seed sweep of the messaging core in 8 shards (ctest -j
# runs them side by side), and whole sessions of the real leader and site cores (checkers,
# scenarios, runs, and a 400-seed sweep in 4 shards). A failing seed reproduces with
# `mstream sim --seed S` (--scenario transport|session to run one of its two scenarios).
add_executable(sim_tests
  ${CMAKE_CURRENT_LIST_DIR}/sim_checker_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_destroy_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_network_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_regression_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_sender_pins_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_sender_rules_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_session_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_simulation_test.cpp)
target_link_libraries(sim_tests PRIVATE mstream_sim mstream_warnings GTest::gtest_main)
gtest_discover_tests(sim_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 300 LABELS sim)

add_executable(sim_seed_tests ${CMAKE_CURRENT_LIST_DIR}/sim_seeds_test.cpp)
target_link_libraries(sim_seed_tests PRIVATE mstream_sim mstream_warnings GTest::gtest_main)
gtest_discover_tests(sim_seed_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 900 LABELS sim)

# The command-line contract, when the mstream binary is part of the build. The seed range of
# The command line, as a user runs it: one seed alone, and a sweep (seeds 101..120 include two
# that found core bugs, S3 of the session simulator's findings).
if(TARGET mstream)
  add_test(NAME sim_cli_one_seed COMMAND mstream sim --seed 7)
  set_tests_properties(sim_cli_one_seed PROPERTIES LABELS sim TIMEOUT 120
    PASS_REGULAR_EXPRESSION "session trace hash [0-9a-f]+\n.*sim: 1 seeds, 0 failed")
  add_test(NAME sim_cli_seeds COMMAND mstream sim --seeds 20 --seed 101)
  set_tests_properties(sim_cli_seeds PROPERTIES LABELS sim TIMEOUT 300
    PASS_REGULAR_EXPRESSION "sim: 20 seeds, 0 failed")
  add_test(NAME sim_cli_session_seed COMMAND mstream sim --scenario session --seed 3)
  set_tests_properties(sim_cli_session_seed PROPERTIES LABELS sim TIMEOUT 120
    PASS_REGULAR_EXPRESSION "session workload: appended=[1-9][0-9]* .*sim: 1 seeds, 0 failed")
endif()
