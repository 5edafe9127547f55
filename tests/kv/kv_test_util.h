// Shared helpers for the kv tests: a temp directory per test and a manual clock.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "kv/kv.h"
#include "tests/status_matchers.h"

namespace pstorage::kv::testing {

// A directory /var/tmp/kv_test_<pid>_<test name>, removed at the end.
class KvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/var/tmp/kv_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  KvOptions Options(bool on_disk = true) {
    KvOptions o;
    o.dir = dir_;
    o.project_id = "proj";
    o.on_disk = on_disk;
    o.now_ms = [this] { return now_ms_.load(); };
    return o;
  }
  std::unique_ptr<KvStore> OpenStore(const KvOptions& o) {
    auto r = KvStore::Open(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<KvStore> OpenStore() { return OpenStore(Options()); }
  std::string LogPath() const { return dir_ + "/proj.log"; }

  std::string dir_;
  std::atomic<int64_t> now_ms_{1'000'000};
};

}  // namespace pstorage::kv::testing
