# Unit tests of the sans-IO protocol cores, written against the headers' promises.
add_executable(proto_tests
  ${CMAKE_CURRENT_LIST_DIR}/proto_rtt_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_path_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_send_channel_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_recv_channel_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_transport_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_transport_loss_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_transport_move_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_membership_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_failure_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_security_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proto_sender_pins_test.cpp)
target_link_libraries(proto_tests PRIVATE mstream_proto mstream_warnings GTest::gtest_main)
gtest_discover_tests(proto_tests DISCOVERY_TIMEOUT 30)
