# The examples, run as a user runs them (`mstream run examples/X.tcl`), with their output
# checked by tests/scripts/check_example.sh: exactly for hello.tcl; for chat.tcl the
# dispatcher's moves, the last line, and one conversation in one order on every display.
if(NOT TARGET mstream)
  return()
endif()

set(mstream_example_check ${CMAKE_CURRENT_LIST_DIR}/scripts/check_example.sh)
set(mstream_examples ${PROJECT_SOURCE_DIR}/examples)
foreach(check hello chat hello-no-sites)
  string(REPLACE "-" "_" name ${check})
  add_test(NAME Example.${name}
    COMMAND bash ${mstream_example_check} ${check} $<TARGET_FILE:mstream> ${mstream_examples})
  set_tests_properties(Example.${name} PROPERTIES TIMEOUT 120 LABELS example)
endforeach()
