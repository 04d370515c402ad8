// AgentRunner: what becomes of a C++ agent that throws (include/mstream/agent.hpp). Issue 18:
// an exception from an agent's callback left the worker thread and ended the daemon
// (std::terminate); it is a handler error like any other.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "mstream/agent.hpp"
#include "site/agent_runner.hpp"
#include "tcl_fake_script_api.hpp"

namespace mstream::site {
namespace {

class NullContext final : public AgentContext {
 public:
  std::string_view stream_name() const override { return "s"; }
  std::string_view sender_name() const override { return {}; }
  std::uint32_t site_id() const override { return 1; }
  Status append(std::string_view, std::string_view) override { return Status::ok_status(); }
  Status relocate(std::uint32_t) override { return Status::ok_status(); }
  void print(std::string_view) override {}
};

// Throws from every callback: a std::exception from some, anything else from the others.
class Thrower final : public Agent {
 public:
  Status on_append(AgentContext&, std::string_view message, std::string*) override {
    throw std::runtime_error("kaboom on " + std::string(message));
  }
  Status on_relocation(AgentContext&) override { throw 7; }
  Status on_failure(AgentContext&) override { throw std::logic_error("no failover"); }
  void on_finalize(AgentContext&) override { throw std::runtime_error("cannot let go"); }
  Status restore_briefcase(std::string_view) override { throw std::length_error("too long"); }
};

void register_types() {
  static const bool once = [] {
    (void)register_agent_type("test-thrower",
                              [](std::string_view) -> Result<std::unique_ptr<Agent>> {
                                return std::unique_ptr<Agent>(std::make_unique<Thrower>());
                              });
    (void)register_agent_type(
        "test-throwing-factory", [](std::string_view args) -> Result<std::unique_ptr<Agent>> {
          throw std::invalid_argument("bad args \"" + std::string(args) + "\"");
        });
    return true;
  }();
  (void)once;
}

class AgentRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override { register_types(); }
  Status load(std::uint64_t agent, const std::string& type, std::string* info) {
    wire::Code code;
    code.agent = agent;
    code.cpp_type = type;
    code.args = "a b";
    return runner_.load(code, context_, info);
  }
  tcl::HandlerOutcome run(tcl::Event event) { return runner_.run(1, event, context_, "m"); }

  tcl::testing::FakeScriptApi api_;
  NullContext cpp_context_;
  tcl::HandlerContext context_{"s", "", 1};
  AgentRunner runner_{&api_, &cpp_context_};
};

TEST_F(AgentRunnerTest, ACallbackThatThrowsIsAHandlerError) {
  std::string info;
  ASSERT_TRUE(load(1, "test-thrower", &info).ok()) << info;
  tcl::HandlerOutcome out = run(tcl::Event::kAppend);
  EXPECT_TRUE(out.ran);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.result, "C++ agent threw from on_append: kaboom on m");
  out = run(tcl::Event::kRelocation);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.result,
            "C++ agent threw from on_relocation: an exception that is not a std::exception");
  out = run(tcl::Event::kFailure);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.result, "C++ agent threw from on_failure: no failover");
  EXPECT_EQ(runner_.restore_briefcase(1, "x").message(),
            "C++ agent threw from restore_briefcase: too long");
  // The agent is still there for the next message, until it is finalized.
  EXPECT_EQ(run(tcl::Event::kAppend).result, "C++ agent threw from on_append: kaboom on m");
  out = runner_.finalize(1, context_);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.result, "C++ agent threw from on_finalize: cannot let go");
  EXPECT_FALSE(runner_.loaded(1));
}

TEST_F(AgentRunnerTest, AFactoryThatThrowsRefusesTheAgent) {
  std::string info;
  Status status = load(2, "test-throwing-factory", &info);
  EXPECT_EQ(status.code(), Status::Code::kInternal);
  EXPECT_EQ(status.message(), "C++ agent threw from its factory: bad args \"a b\"");
  EXPECT_EQ(info, status.message());
  EXPECT_FALSE(runner_.loaded(2));
  EXPECT_EQ(runner_.count(), 0u);
}

}  // namespace
}  // namespace mstream::site
