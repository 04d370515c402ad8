# mstream_warnings: warnings as errors on our own code only (third-party headers are SYSTEM
# includes). Shared by the root build and the standalone fuzz build.
add_library(mstream_warnings INTERFACE)
target_compile_options(mstream_warnings INTERFACE -Wall -Wextra -Wpedantic -Werror
  -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  target_compile_options(mstream_warnings INTERFACE -Wthread-safety)
endif()
