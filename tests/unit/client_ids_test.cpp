#include "actors/speakers/core/client_ids.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sbm::speakers {
namespace {

TEST(ClientIds, OneCopyPerIdFreedWithItsLastHolder) {
  const std::size_t before = interned_client_ids();
  {
    client_id_ref a{"clinic-unit-a"};
    client_id_ref b{std::string("clinic-unit-") + "a"};
    EXPECT_EQ(&a.str(), &b.str()) << "the same id is one string";
    EXPECT_EQ(a.str(), "clinic-unit-a");
    EXPECT_EQ(interned_client_ids(), before + 1);
    {
      client_id_ref c{"clinic-unit-c"};
      EXPECT_EQ(interned_client_ids(), before + 2);
    }
    EXPECT_EQ(interned_client_ids(), before + 1);
    client_id_ref moved = std::move(a);
    EXPECT_EQ(moved.str(), "clinic-unit-a");
    EXPECT_EQ(a.str(), "");  // NOLINT(bugprone-use-after-move): a moved-from ref reads empty
    b = client_id_ref{"clinic-unit-d"};
    EXPECT_EQ(interned_client_ids(), before + 2);
  }
  EXPECT_EQ(interned_client_ids(), before);
}

TEST(ClientIds, EmptyIdHoldsNoEntry) {
  const std::size_t before = interned_client_ids();
  const client_id_ref none;
  const client_id_ref empty{""};
  EXPECT_EQ(none.str(), "");
  EXPECT_EQ(empty.str(), "");
  EXPECT_EQ(interned_client_ids(), before);
}

TEST(ClientIds, ConcurrentHoldersAgreeOnTheCount) {
  const std::size_t before = interned_client_ids();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      for (int i = 0; i < 20000; ++i) {
        client_id_ref a{"clinic-race-" + std::to_string(i % 7)};
        client_id_ref b{"clinic-race-" + std::to_string(i % 5)};
        ASSERT_EQ(a.str(), "clinic-race-" + std::to_string(i % 7));
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(interned_client_ids(), before);
}

}  // namespace
}  // namespace sbm::speakers
