# Tests of the session leader's core alone (src/leader), driven message by message: what it
# sends for what it hears, without sites or a network.
if(NOT TARGET mstream_leader)
  return()
endif()
add_executable(leader_tests ${CMAKE_CURRENT_LIST_DIR}/leader_policy_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/leader_join_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/leader_moves_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/leader_placed_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/leader_sender_rules_test.cpp)
target_link_libraries(leader_tests PRIVATE mstream_leader mstream_sim mstream_warnings
  GTest::gtest_main)
gtest_discover_tests(leader_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60 LABELS leader)
