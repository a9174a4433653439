// Which versions of the members' messages can talk: each side must read what the other sends, so
// a build that still reads the previous form can run beside it during a rolling upgrade.
#include <gtest/gtest.h>

#include "messages/cluster.hpp"

using sbm::compatible;
using sbm::messages_version;

TEST(MessagesVersion, TheSameVersionTalks) {
  EXPECT_TRUE(compatible(sbm::build_messages_version, sbm::build_messages_version));
  EXPECT_TRUE(compatible(messages_version{3, 3}, messages_version{3, 3}));
}

TEST(MessagesVersion, ANewerBuildThatStillReadsTheOlderFormTalks) {
  EXPECT_TRUE(compatible(messages_version{4, 3}, messages_version{3, 3}));
  EXPECT_TRUE(compatible(messages_version{3, 3}, messages_version{4, 3}));
}

TEST(MessagesVersion, AFormEitherSideNoLongerReadsIsRefused) {
  EXPECT_FALSE(compatible(messages_version{4, 4}, messages_version{3, 3}));
  EXPECT_FALSE(compatible(messages_version{3, 3}, messages_version{4, 4}));
  EXPECT_FALSE(compatible(sbm::build_messages_version, messages_version{99, 99}));
}
