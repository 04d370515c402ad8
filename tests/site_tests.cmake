# Tests of the site core (src/site) driven in memory: sites wired to each other without a
# leader process or a network.
if(NOT TARGET mstream_site)
  return()
endif()
add_executable(site_tests ${CMAKE_CURRENT_LIST_DIR}/site_agent_runner_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/site_destroy_test.cpp ${CMAKE_CURRENT_LIST_DIR}/site_sender_rules_test.cpp)
target_link_libraries(site_tests PRIVATE mstream_site mstream_sim mstream_warnings
  GTest::gtest_main)
gtest_discover_tests(site_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60 LABELS site)
