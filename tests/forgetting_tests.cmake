# Whole sessions in memory (memory_session.hpp): what a session keeps about destroyed streams
# and departed shells stays bounded (one churns them and checks every table that remembers),
# refusals of a destroyed stream, what a move asks of its sites' handler lanes, and how
# delivery batches go to a lane.
if(NOT TARGET mstream_leader)
  return()
endif()
add_executable(forgetting_tests ${CMAKE_CURRENT_LIST_DIR}/forgetting_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/destroy_refusals_test.cpp ${CMAKE_CURRENT_LIST_DIR}/memory_moves_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/memory_batches_test.cpp)
target_link_libraries(forgetting_tests PRIVATE mstream_leader mstream_sim mstream_warnings GTest::gtest_main)
gtest_discover_tests(forgetting_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120 LABELS site)
