#include "proto/config.hpp"

namespace mstream::proto {

const char* retransmission_class_name(RetransmissionClass c) {
  switch (c) {
    case RetransmissionClass::kSelectiveRepeat: return "selective-repeat";
    case RetransmissionClass::kGoBackN: return "go-back-n";
  }
  return "unknown";
}

}  // namespace mstream::proto
