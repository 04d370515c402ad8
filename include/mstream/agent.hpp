#pragma once
// C++ agent types: agents written in C++ and registered by name, usable wherever a Tcl agent is
// (`register_agent STREAM ARGS -cpp TYPE`), for speed. Every site binary registers the same
// types, so only the type name and ARGS travel; the state that moves with the stream is what
// save_briefcase() returns (DESIGN.md "Agent").
//
// Thread-safety: an Agent's methods are called on the one thread that runs its stream's
// handlers at a site, never concurrently. register_agent_type() must be called before any site
// or shell starts (e.g. from main), not concurrently with one.
//
// Errors: return an error Status. An exception thrown by on_append, on_relocation, on_failure,
// on_finalize, restore_briefcase or the AgentFactory is caught where the site calls it and
// becomes an error Status (kInternal: "C++ agent threw from on_append: " and the what() of a
// std::exception): from a handler, a handler error like a Tcl one (reported, or raised by the
// shell's -sync append or move that waits for it; the message still counts as consumed and the
// agent stays attached); from the factory, the agent is refused. save_briefcase() and
// has_append_handler() must not throw: an exception there ends the daemon (std::terminate), as
// one from a destructor does.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "mstream/status.hpp"

namespace mstream {

// What a handler may do, valid only during the call that received it. Control commands on the
// agent's own stream take effect after the handler returns (the atomic handler model).
class AgentContext {
 public:
  virtual ~AgentContext() = default;
  virtual std::string_view stream_name() const = 0;
  // The sender of the message being handled: a stream name or "shell:ID"; empty otherwise.
  virtual std::string_view sender_name() const = 0;
  virtual std::uint32_t site_id() const = 0;
  // Appends asynchronously, like stream_append. Errors: kNotFound (no such stream),
  // kTooLarge, kInvalidArgument.
  virtual Status append(std::string_view stream, std::string_view message) = 0;
  // Moves the agent's own stream after this handler returns (stream_relocate).
  virtual Status relocate(std::uint32_t site) = 0;
  // A line of output, shown as `[SITE] text` by `mstream run`.
  virtual void print(std::string_view text) = 0;
};

class Agent {
 public:
  virtual ~Agent() = default;
  // A message was delivered; `result` is what a -sync append receives. Returning an error
  // is reported like a Tcl handler error; the message still counts as consumed.
  virtual Status on_append(AgentContext& context, std::string_view message,
                           std::string* result) = 0;
  // Runs at the new site after each move, before any further on_append. Its error (or
  // exception) does not undo the move.
  virtual Status on_relocation(AgentContext& /*context*/) { return Status::ok_status(); }
  virtual Status on_failure(AgentContext& /*context*/) { return Status::ok_status(); }
  virtual void on_finalize(AgentContext& /*context*/) {}
  // The briefcase: the state that travels with a move, as bytes of the agent's own format.
  virtual std::string save_briefcase() const { return {}; }
  // Errors (kInvalidArgument) on a briefcase this type cannot read.
  virtual Status restore_briefcase(std::string_view /*saved*/) { return Status::ok_status(); }
  // Whether a handler exists, so a stream with no append handler consumes at once.
  virtual bool has_append_handler() const { return true; }
};

// Makes an agent from the ARGS of register_agent; runs at each site on the agent's first visit
// (its initialization). Errors (kInvalidArgument) refuse the attach with that message.
using AgentFactory = std::function<Result<std::unique_ptr<Agent>>(std::string_view args)>;

// Errors: kAlreadyExists, kInvalidArgument (empty name or factory).
Status register_agent_type(const std::string& name, AgentFactory factory);
// nullptr when no type has that name.
const AgentFactory* find_agent_type(std::string_view name);

}  // namespace mstream
