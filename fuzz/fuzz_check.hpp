#pragma once
// The fuzz targets' assertion: an invariant that fails aborts, so libFuzzer records the input.

#include <cstdio>
#include <cstdlib>

namespace mstream::fuzz {

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace mstream::fuzz
