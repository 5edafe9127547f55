// KvStore semantics, in memory and on disk: versions, conditions, TTL,
// listing, transactions, batches, watch.
#include <filesystem>
#include <vector>

#include "tests/kv/kv_test_util.h"

namespace pstorage::kv::testing {
namespace {

TEST_F(KvTest, PutGetVersionsAndTimes) {
  auto store = OpenStore();
  auto e1 = store->Put("a", R"({ "x" : [1, 2] })");
  ASSERT_OK(e1.status());
  EXPECT_EQ(e1->version, 1u);
  EXPECT_EQ(e1->value, R"({"x":[1,2]})");
  EXPECT_EQ(e1->created_at_ms, 1'000'000);
  now_ms_ = 2'000'000;
  auto e2 = store->Put("a", "7", {.tags = {{"team", "x"}}});
  ASSERT_OK(e2.status());
  EXPECT_EQ(e2->version, 2u);
  EXPECT_EQ(e2->created_at_ms, 1'000'000);
  EXPECT_EQ(e2->updated_at_ms, 2'000'000);
  auto got = store->Get("a");
  ASSERT_OK(got.status());
  EXPECT_EQ(got->value, "7");
  EXPECT_EQ(got->tags.at("team"), "x");
  EXPECT_EQ(store->Get("b").status().code(), Code::kNotFound);
  Stats s = store->GetStats();
  EXPECT_EQ(s.keys, 1u);
  EXPECT_EQ(s.key_bytes, 1u);
  EXPECT_EQ(s.value_bytes, 1u);
  EXPECT_EQ(s.writes, 2u);
  EXPECT_EQ(s.syncs, 2u);  // one writer at a time: one sync each
}

TEST_F(KvTest, StatsKeyBytesFollowPutsDeletesAndClear) {
  auto store = OpenStore(Options(/*on_disk=*/false));
  ASSERT_OK(store->PutBatch({{"ab", "1"}, {"cde", "2"}}).status());
  EXPECT_EQ(store->GetStats().key_bytes, 5u);
  ASSERT_OK(store->Put("ab", "3").status());  // an update adds no key bytes
  EXPECT_EQ(store->GetStats().key_bytes, 5u);
  ASSERT_OK(store->Delete("cde"));
  EXPECT_EQ(store->GetStats().key_bytes, 2u);
  ASSERT_OK(store->DeleteAll());
  EXPECT_EQ(store->GetStats().key_bytes, 0u);
  EXPECT_EQ(store->GetStats().syncs, 0u);  // memory only
}

TEST_F(KvTest, ConditionalPutAndDelete) {
  auto store = OpenStore();
  ASSERT_OK(store->Put("k", "1", {.if_version = 0}).status());
  EXPECT_EQ(store->Put("k", "2", {.if_version = 0}).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(store->Put("k", "2", {.if_version = 5}).status().code(),
            Code::kFailedPrecondition);
  ASSERT_OK(store->Put("k", "2", {.if_version = 1}).status());
  EXPECT_EQ(store->Delete("k", 1).code(), Code::kFailedPrecondition);
  EXPECT_EQ(store->Get("k")->value, "2");
  ASSERT_OK(store->Delete("k", 2));
  EXPECT_EQ(store->Delete("k").code(), Code::kNotFound);
  // A recreated key starts again at version 1.
  EXPECT_EQ(store->Put("k", "3")->version, 1u);
}

TEST_F(KvTest, InvalidValuesKeysAndOptionsRefused) {
  auto store = OpenStore();
  for (const char* bad : {"", "{", "1 2", "{\"a\":1}x", "nul", "'s'", "NaN", "[1,]"}) {
    EXPECT_EQ(store->Put("k", bad).status().code(), Code::kInvalidArgument) << bad;
  }
  std::string deep32(32, '['), deep33(33, '[');
  deep32 += std::string(32, ']');
  deep33 += std::string(33, ']');
  EXPECT_OK(store->Put("k", deep32).status());
  EXPECT_EQ(store->Put("k", deep33).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Put("", "1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Put(std::string(1025, 'k'), "1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Put("a\nb", "1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Put("\xff", "1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Put("k", "1", {.ttl_seconds = 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Put("k", "\"\xc3\"").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Get("k")->version, 1u);  // only the deep32 write landed
}

TEST_F(KvTest, BadProjectIdsRefused) {
  for (std::string id : {std::string(), std::string("a/b"), std::string(".."),
                         std::string("a b"), std::string("é"), std::string(65, 'a')}) {
    KvOptions o = Options();
    o.project_id = id;
    EXPECT_EQ(KvStore::Open(o).status().code(), Code::kInvalidArgument) << id;
  }
  KvOptions o = Options();
  o.project_id = std::string(64, 'a');
  o.project_id[0] = '-';
  EXPECT_OK(KvStore::Open(o).status());
}

TEST_F(KvTest, MemoryOnlyLeavesNoFiles) {
  auto store = OpenStore(Options(/*on_disk=*/false));
  ASSERT_OK(store->Put("a", "1").status());
  ASSERT_OK(store->Compact());
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(KvTest, TtlNeverReturnsExpiredAndExpireNowEmitsEvents) {
  auto store = OpenStore();
  std::vector<Event> events;
  store->Watch("", [&](const Event& e) { events.push_back(e); });
  ASSERT_OK(store->Put("t", "1", {.ttl_seconds = 10}).status());
  ASSERT_OK(store->Put("p", "2").status());
  EXPECT_EQ(store->Get("t")->expires_at_ms, 1'000'000 + 10'000);
  now_ms_ += 9'999;
  EXPECT_OK(store->Get("t").status());
  now_ms_ += 1;
  EXPECT_EQ(store->Get("t").status().code(), Code::kNotFound);
  EXPECT_EQ(store->List("", "", 10)->entries.size(), 1u);
  Txn txn;
  txn.conditions.push_back({Condition::Kind::kNotExists, "t"});
  EXPECT_TRUE(store->Transact(txn)->succeeded);
  auto n = store->ExpireNow();
  ASSERT_OK(n.status());
  EXPECT_EQ(*n, 1u);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].type, Event::Type::kExpire);
  EXPECT_EQ(events[2].key, "t");
  EXPECT_EQ(events[2].version, 1u);
  EXPECT_EQ(store->GetStats().expirations, 1u);
  EXPECT_EQ(store->ExpireNow().value(), 0u);
}

TEST_F(KvTest, PutOverExpiredKeyRecordsExpiryAndRestartsVersion) {
  auto store = OpenStore();
  std::vector<Event> events;
  store->Watch("", [&](const Event& e) { events.push_back(e); });
  ASSERT_OK(store->Put("t", "1", {.ttl_seconds = 1}).status());
  now_ms_ += 5'000;
  auto e = store->Put("t", "2", {.if_version = 0});
  ASSERT_OK(e.status());
  EXPECT_EQ(e->version, 1u);
  EXPECT_EQ(e->expires_at_ms, 0);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].type, Event::Type::kExpire);
  EXPECT_EQ(events[2].type, Event::Type::kPut);
}

TEST_F(KvTest, ListPrefixAndCursorAcrossChanges) {
  auto store = OpenStore();
  for (const char* k : {"a", "u/1", "u/2", "u/3", "u/4", "u/5", "v"}) {
    ASSERT_OK(store->Put(k, "0").status());
  }
  auto p1 = store->List("u/", "", 2);
  ASSERT_OK(p1.status());
  ASSERT_EQ(p1->entries.size(), 2u);
  EXPECT_EQ(p1->entries[1].key, "u/2");
  EXPECT_TRUE(p1->has_more);
  // Changes between pages: delete an unseen key, insert before and after the cursor.
  ASSERT_OK(store->Delete("u/3"));
  ASSERT_OK(store->Put("u/0", "0").status());
  ASSERT_OK(store->Put("u/25", "0").status());
  auto p2 = store->List("u/", "u/2", 2);
  ASSERT_EQ(p2->entries.size(), 2u);
  EXPECT_EQ(p2->entries[0].key, "u/25");
  EXPECT_EQ(p2->entries[1].key, "u/4");
  EXPECT_TRUE(p2->has_more);
  auto p3 = store->List("u/", "u/4", 2);
  ASSERT_EQ(p3->entries.size(), 1u);
  EXPECT_EQ(p3->entries[0].key, "u/5");
  EXPECT_FALSE(p3->has_more);
  EXPECT_EQ(store->List("", "", 100)->entries.size(), 8u);
  EXPECT_EQ(store->List("", "", 0).status().code(), Code::kInvalidArgument);
}

TEST_F(KvTest, TransactionIsAllOrNothing) {
  auto store = OpenStore();
  ASSERT_OK(store->Put("acct/a", "100").status());
  ASSERT_OK(store->Put("acct/b", "0").status());
  Txn bad;
  bad.conditions = {{Condition::Kind::kVersionEquals, "acct/a", 1},
                    {Condition::Kind::kValueEquals, "acct/b", 0, " 5 "}};
  bad.ops = {{TxnOp::Kind::kPut, "acct/a", "90"}, {TxnOp::Kind::kPut, "acct/b", "10"}};
  auto r = store->Transact(bad);
  ASSERT_OK(r.status());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->failed_condition, 1u);
  EXPECT_EQ(store->Get("acct/a")->value, "100");
  // An op failing (a delete whose if_version no longer holds) also changes
  // nothing.
  Txn op_fails;
  op_fails.ops = {{TxnOp::Kind::kPut, "acct/a", "1"},
                  {TxnOp::Kind::kDelete, "acct/b", "", {.if_version = 7}}};
  EXPECT_EQ(store->Transact(op_fails).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(store->Get("acct/a")->version, 1u);
  // A plain delete of an absent key is a no-op, reported with version 0.
  Txn absent;
  absent.ops = {{TxnOp::Kind::kDelete, "missing"}};
  auto none = store->Transact(absent);
  ASSERT_OK(none.status());
  EXPECT_TRUE(none->succeeded);
  EXPECT_EQ(none->entries.at(0).version, 0u);
  Txn good = bad;
  good.conditions[1].value_json = "0";
  good.conditions.push_back({Condition::Kind::kNotExists, "acct/c"});
  good.ops.push_back({TxnOp::Kind::kPut, "acct/c", "{}"});
  good.ops.push_back({TxnOp::Kind::kDelete, "acct/c"});
  r = store->Transact(good);
  ASSERT_OK(r.status());
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(store->Get("acct/a")->value, "90");
  EXPECT_EQ(store->Get("acct/b")->version, 2u);
  EXPECT_EQ(store->Get("acct/c").status().code(), Code::kNotFound);
  EXPECT_EQ(store->GetStats().writes, 3u);  // two puts + one transaction record (the no-op writes none)
}

TEST_F(KvTest, Batches) {
  auto store = OpenStore();
  auto put = store->PutBatch({{"a", "1"}, {"b", "2"}, {"a", "3"}});
  ASSERT_OK(put.status());
  EXPECT_EQ((*put)[2].version, 2u);
  EXPECT_EQ(store->PutBatch({{"c", "1"}, {"d", "{"}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Get("c").status().code(), Code::kNotFound);
  auto got = store->GetBatch({"a", "c", "b"});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]->value, "3");
  EXPECT_EQ(got[1].status().code(), Code::kNotFound);
  EXPECT_EQ(store->DeleteBatch({"a", "c", "b"}).value(), 2u);
  EXPECT_EQ(store->GetStats().keys, 0u);
  ASSERT_OK(store->Put("x", "1").status());
  ASSERT_OK(store->DeleteAll());
  EXPECT_EQ(store->GetStats().keys, 0u);
}

TEST_F(KvTest, WatchOrderPrefixAndUnwatch) {
  auto store = OpenStore();
  std::vector<std::string> seen;
  uint64_t id = store->Watch("w/", [&](const Event& e) {
    seen.push_back(std::to_string(static_cast<int>(e.type)) + e.key + "@" +
                   std::to_string(e.version) + "=" + e.value);
    // Reads from a callback see the change already applied.
    if (e.type == Event::Type::kPut) {
      EXPECT_EQ(store->Get(e.key)->version, e.version);
    }
  });
  ASSERT_NE(id, 0u);
  ASSERT_OK(store->Put("w/a", "1").status());
  ASSERT_OK(store->Put("other", "1").status());
  ASSERT_OK(store->PutBatch({{"w/b", "2"}, {"w/a", "3"}}).status());
  ASSERT_OK(store->Delete("w/b"));
  ASSERT_OK(store->DeleteAll());
  store->Unwatch(id);
  ASSERT_OK(store->Put("w/c", "1").status());
  std::vector<std::string> want = {"0w/a@1=1", "0w/b@1=2", "0w/a@2=3", "1w/b@1=", "1w/a@2="};
  EXPECT_EQ(seen, want);
}

}  // namespace
}  // namespace pstorage::kv::testing
