# Unit tests of the wire layer: the codec, CRC-32C, the datagram format, the seals, and the
# vendored AEGIS-256 (third_party/aegis256) against known answers.
add_executable(wire_tests
  ${CMAKE_CURRENT_LIST_DIR}/wire_aegis256_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire_codec_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire_crc32c_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire_crypto_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire_datagram_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire_malformed_test.cpp)
target_link_libraries(wire_tests PRIVATE mstream_wire mstream_aegis256 mstream_warnings
  GTest::gtest_main)
gtest_discover_tests(wire_tests DISCOVERY_TIMEOUT 30)
