# Tests of the deterministic simulator: its network model and checkers in isolation, whole
# runs against the real core, and the 2,048-seed sweep in 8 shards (ctest -j runs them side
# by side). A failing seed reproduces with `mstream sim --seed S`.
add_executable(sim_tests
  ${CMAKE_CURRENT_LIST_DIR}/sim_checker_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_network_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_simulation_test.cpp)
target_link_libraries(sim_tests PRIVATE mstream_sim mstream_warnings GTest::gtest_main)
gtest_discover_tests(sim_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 300 LABELS sim)

add_executable(sim_seed_tests ${CMAKE_CURRENT_LIST_DIR}/sim_seeds_test.cpp)
target_link_libraries(sim_seed_tests PRIVATE mstream_sim mstream_warnings GTest::gtest_main)
gtest_discover_tests(sim_seed_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 900 LABELS sim)

# The command-line contract, when the mstream binary is part of the build.
if(TARGET mstream)
  add_test(NAME sim_cli_one_seed COMMAND mstream sim --seed 7)
  set_tests_properties(sim_cli_one_seed PROPERTIES LABELS sim TIMEOUT 120
    PASS_REGULAR_EXPRESSION "trace hash [0-9a-f]+\n.*sim: 1 seeds, 0 failed")
  add_test(NAME sim_cli_seeds COMMAND mstream sim --seeds 20 --seed 100)
  set_tests_properties(sim_cli_seeds PROPERTIES LABELS sim TIMEOUT 300
    PASS_REGULAR_EXPRESSION "sim: 20 seeds, 0 failed")
endif()
