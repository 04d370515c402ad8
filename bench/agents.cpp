#include "bench/agents.hpp"

#include <charconv>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mstream/agent.hpp"
#include "runtime/clock.hpp"

namespace mstream::bench {
namespace {

constexpr std::size_t kDataBytes = 64;  // as in the other benchmarks

// Space-separated unsigned numbers; false unless exactly `count` of them.
bool parse_numbers(std::string_view text, std::size_t count, std::uint64_t* out) {
  std::size_t n = 0;
  while (!text.empty()) {
    if (text.front() == ' ') {
      text.remove_prefix(1);
      continue;
    }
    if (n == count) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out[n]);
    if (ec != std::errc()) return false;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    ++n;
  }
  return n == count;
}

std::string join_numbers(std::initializer_list<std::uint64_t> values) {
  std::string s;
  for (std::uint64_t v : values) {
    if (!s.empty()) s += ' ';
    s += std::to_string(v);
  }
  return s;
}

Status bad_briefcase(std::string_view type) {
  return Status::error(Status::Code::kInvalidArgument, "not a " + std::string(type) + " briefcase");
}

// Restores `count` numbers saved by join_numbers.
Status restore_numbers(std::string_view saved, std::size_t count, std::uint64_t* out,
                       std::string_view type) {
  return parse_numbers(saved, count, out) ? Status::ok_status() : bad_briefcase(type);
}

// The two sites of a moving pipeline end, and the other one from where it is.
struct SitePair {
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  std::uint32_t other(std::uint32_t here) const { return here == a ? b : a; }
};

class Counter final : public Agent {
 public:
  Status on_append(AgentContext&, std::string_view message, std::string* result) override {
    if (message == "stats") {
      *result = join_numbers({appends_, hops_});
      return Status::ok_status();
    }
    ++appends_;
    return Status::ok_status();
  }
  Status on_relocation(AgentContext&) override {
    ++hops_;
    return Status::ok_status();
  }
  std::string save_briefcase() const override { return join_numbers({appends_, hops_}); }
  Status restore_briefcase(std::string_view saved) override {
    std::uint64_t v[2];
    if (Status s = restore_numbers(saved, 2, v, kCounterAgent); !s.ok()) return s;
    appends_ = v[0];
    hops_ = v[1];
    return Status::ok_status();
  }

 private:
  std::uint64_t appends_ = 0;
  std::uint64_t hops_ = 0;
};

class PipeSender final : public Agent {
 public:
  PipeSender(std::string receiver, SitePair sites) : receiver_(std::move(receiver)), sites_(sites) {
    data_.assign(kDataBytes, 'x');
    data_[0] = kDataTag;
  }

  Status on_append(AgentContext& context, std::string_view message, std::string* result) override {
    if (message == "stats") {
      *result = join_numbers({sent_, moves_});
      return Status::ok_status();
    }
    std::uint64_t go[2];
    if (message.substr(0, 3) != "go " || !parse_numbers(message.substr(3), 2, go))
      return Status::error(Status::Code::kInvalidArgument,
                           "bench.pipe_sender: expected \"go N K\" or \"stats\"");
    remaining_ = go[0];
    k_ = go[1];
    sent_ = 0;
    moves_ = 0;
    return send_batch(context);
  }

  Status on_relocation(AgentContext& context) override {
    ++moves_;
    return send_batch(context);
  }

  std::string save_briefcase() const override {
    return join_numbers({remaining_, k_, sent_, moves_});
  }
  Status restore_briefcase(std::string_view saved) override {
    std::uint64_t v[4];
    if (Status s = restore_numbers(saved, 4, v, kPipeSenderAgent); !s.ok()) return s;
    remaining_ = v[0];
    k_ = v[1];
    sent_ = v[2];
    moves_ = v[3];
    return Status::ok_status();
  }

 private:
  // The next K messages (all of them when K = 0), then a move if any are left: the move takes
  // effect once this handler returns, and the relocation handler sends the next batch.
  Status send_batch(AgentContext& context) {
    std::uint64_t n = k_ == 0 ? remaining_ : std::min(k_, remaining_);
    for (; n > 0; --n) {
      if (Status s = context.append(receiver_, data_); !s.ok()) return s;
      --remaining_;
      ++sent_;
    }
    if (remaining_ > 0 && k_ > 0) return context.relocate(sites_.other(context.site_id()));
    return Status::ok_status();
  }

  std::string receiver_;
  SitePair sites_;
  std::string data_;
  std::uint64_t remaining_ = 0;
  std::uint64_t k_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t moves_ = 0;
};

class PipeReceiver final : public Agent {
 public:
  explicit PipeReceiver(SitePair sites) : sites_(sites) {}

  Status on_append(AgentContext& context, std::string_view message, std::string* result) override {
    if (!message.empty() && message.front() == kDataTag) {
      ++consumed_;
      last_ns_ = static_cast<std::uint64_t>(runtime::monotonic_now());
      if (k_ > 0 && consumed_ % k_ == 0) return context.relocate(sites_.other(context.site_id()));
      return Status::ok_status();
    }
    if (message == "stats") {
      *result = join_numbers({consumed_, last_ns_, moves_});
      return Status::ok_status();
    }
    std::uint64_t k = 0;
    if (message.substr(0, 6) != "reset " || !parse_numbers(message.substr(6), 1, &k))
      return Status::error(Status::Code::kInvalidArgument,
                           "bench.pipe_receiver: expected data, \"reset K\" or \"stats\"");
    k_ = k;
    consumed_ = 0;
    last_ns_ = 0;
    moves_ = 0;
    *result = "ok";
    return Status::ok_status();
  }

  Status on_relocation(AgentContext&) override {
    ++moves_;
    return Status::ok_status();
  }

  std::string save_briefcase() const override {
    return join_numbers({k_, consumed_, last_ns_, moves_});
  }
  Status restore_briefcase(std::string_view saved) override {
    std::uint64_t v[4];
    if (Status s = restore_numbers(saved, 4, v, kPipeReceiverAgent); !s.ok()) return s;
    k_ = v[0];
    consumed_ = v[1];
    last_ns_ = v[2];
    moves_ = v[3];
    return Status::ok_status();
  }

 private:
  SitePair sites_;
  std::uint64_t k_ = 0;
  std::uint64_t consumed_ = 0;
  std::uint64_t last_ns_ = 0;
  std::uint64_t moves_ = 0;
};

class FailoverProbe final : public Agent {
 public:
  Status on_append(AgentContext& context, std::string_view message, std::string* result) override {
    if (message != "stats")
      return Status::error(Status::Code::kInvalidArgument, "bench.failover: expected \"stats\"");
    *result = join_numbers({failures_, failed_ns_, context.site_id()});
    return Status::ok_status();
  }
  Status on_failure(AgentContext&) override {
    ++failures_;
    failed_ns_ = static_cast<std::uint64_t>(runtime::monotonic_now());
    return Status::ok_status();
  }

 private:
  std::uint64_t failures_ = 0;
  std::uint64_t failed_ns_ = 0;
};

Status bad_args(std::string_view type, std::string_view expected) {
  return Status::error(Status::Code::kInvalidArgument,
                       std::string(type) + ": ARGS must be \"" + std::string(expected) + "\"");
}

Result<std::unique_ptr<Agent>> make_sender(std::string_view args) {
  const std::size_t space = args.find(' ');
  std::uint64_t sites[2];
  if (space == std::string_view::npos || space == 0 ||
      !parse_numbers(args.substr(space + 1), 2, sites))
    return bad_args(kPipeSenderAgent, "RECEIVER SITE_A SITE_B");
  return std::unique_ptr<Agent>(std::make_unique<PipeSender>(
      std::string(args.substr(0, space)),
      SitePair{static_cast<std::uint32_t>(sites[0]), static_cast<std::uint32_t>(sites[1])}));
}

Result<std::unique_ptr<Agent>> make_receiver(std::string_view args) {
  std::uint64_t sites[2];
  if (!parse_numbers(args, 2, sites)) return bad_args(kPipeReceiverAgent, "SITE_A SITE_B");
  return std::unique_ptr<Agent>(std::make_unique<PipeReceiver>(
      SitePair{static_cast<std::uint32_t>(sites[0]), static_cast<std::uint32_t>(sites[1])}));
}

}  // namespace

void register_bench_agent_types() {
  static std::once_flag once;
  std::call_once(once, [] {
    // kAlreadyExists only if someone registered the same name first; theirs stays.
    (void)register_agent_type(std::string(kCounterAgent),
                              [](std::string_view) -> Result<std::unique_ptr<Agent>> {
                                return std::unique_ptr<Agent>(std::make_unique<Counter>());
                              });
    (void)register_agent_type(std::string(kPipeSenderAgent), make_sender);
    (void)register_agent_type(std::string(kPipeReceiverAgent), make_receiver);
    (void)register_agent_type(std::string(kFailoverAgent),
                              [](std::string_view) -> Result<std::unique_ptr<Agent>> {
                                return std::unique_ptr<Agent>(std::make_unique<FailoverProbe>());
                              });
  });
}

}  // namespace mstream::bench
