#pragma once
// How a handler's error reads (site/handler_errors.cpp has where it goes).

#include <string>
#include <string_view>

namespace mstream::site {

// A handler's error as a user reads it: its message, then what Tcl's errorInfo adds (the
// lines of where it happened). errorInfo begins with the message itself, as Tcl builds it;
// said once here, not twice. A C++ agent's error has no errorInfo beyond its message.
std::string error_text(std::string_view message, std::string_view error_info);

}  // namespace mstream::site
