// What the daemons say on stderr about what they dropped because someone lied
// (runtime/drop_log.hpp): every counter of a lie, at most once a second, only when one grew.
#include <gtest/gtest.h>

#include <string>

#include "runtime/drop_log.hpp"

namespace mstream::runtime {
namespace {

TEST(DropLog, SaysEveryKindOfLieAtMostOnceASecondWhenOneGrew) {
  DropLog log;
  proto::TransportStats s;
  const proto::Time t0 = 5 * proto::kSecond;
  EXPECT_FALSE(log.check(s, 0, "site", t0));  // nothing dropped: nothing to say
  s.wrong_site_frames = 3;
  std::optional<std::string> line = log.check(s, 0, "site", t0);
  ASSERT_TRUE(line);
  EXPECT_EQ(*line,
            "mstream site: dropped datagrams that did not authenticate: 0 forged or tampered "
            "with, 0 replayed, 0 unsealed; control messages their sender may not send: 0; DATA "
            "a member sent in the name of a stream its site does not host: 0 of control "
            "streams, 3 of user streams (so far)\n");
  // More within the second: said later, with the totals then.
  s.impostor_frames = 2;
  EXPECT_FALSE(log.check(s, 1, "site", t0 + proto::kSecond / 2));
  s.forged_in = 4;
  line = log.check(s, 1, "leader", t0 + proto::kSecond);
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("mstream leader: "), std::string::npos) << *line;
  EXPECT_NE(line->find(": 4 forged or tampered with"), std::string::npos) << *line;
  EXPECT_NE(line->find("may not send: 1;"), std::string::npos) << *line;
  EXPECT_NE(line->find(": 2 of control streams, 3 of user streams"), std::string::npos) << *line;
  // Nothing new: nothing, however long after.
  EXPECT_FALSE(log.check(s, 1, "leader", t0 + 10 * proto::kSecond));
  // Other counters are not lies (late copies, acks of a site left): no line.
  s.held_refused = 9;
  s.misdirected_acks = 9;
  EXPECT_FALSE(log.check(s, 1, "leader", t0 + 20 * proto::kSecond));
}

}  // namespace
}  // namespace mstream::runtime
