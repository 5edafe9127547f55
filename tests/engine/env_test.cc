// Env: POSIX files in a temp dir under /var/tmp, and MemoryEnv's crash and
// fault hooks.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "engine/journal.h"
#include "engine/memory_env.h"

namespace pstorage::engine {
namespace {

using Bytes = std::vector<uint8_t>;

::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}

// The value of a Result the test needs; a failure ends the test binary.
template <typename T>
T Take(Result<T> r) {
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    std::abort();
  }
  return std::move(r).value();
}

Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes ReadAll(File& f) {
  Bytes out(Take(f.Size()));
  EXPECT_EQ(Take(f.ReadAt(0, out)), out.size());
  return out;
}

class PosixEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/var/tmp/pstorage-env-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Env* env_ = DefaultEnv();
  std::string dir_;
};

TEST_F(PosixEnvTest, FileAppendReadSizeTruncate) {
  const std::string path = dir_ + "/f";
  EXPECT_FALSE(env_->Exists(path));
  {
    std::unique_ptr<File> f = Take(env_->OpenFile(path));
    EXPECT_TRUE(env_->Exists(path));
    ASSERT_TRUE(IsOk(f->Append(B("hello "))));
    ASSERT_TRUE(IsOk(f->Append(B("world"))));
    ASSERT_TRUE(IsOk(f->Sync()));
    EXPECT_EQ(Take(f->Size()), 11u);
    Bytes out(8);
    EXPECT_EQ(Take(f->ReadAt(6, out)), 5u);  // short at the end of the file
    EXPECT_EQ(Bytes(out.begin(), out.begin() + 5), B("world"));
    EXPECT_EQ(Take(f->ReadAt(11, out)), 0u);
    EXPECT_EQ(Take(f->ReadAt(100, out)), 0u);
    ASSERT_TRUE(IsOk(f->Truncate(5)));
    ASSERT_TRUE(IsOk(f->Append(B("!"))));  // appends land at the (new) end
    EXPECT_EQ(ReadAll(*f), B("hello!"));
  }
  std::unique_ptr<File> f = Take(env_->OpenFile(path));  // reopen keeps content
  ASSERT_TRUE(IsOk(f->Append(B("?"))));
  EXPECT_EQ(ReadAll(*f), B("hello!?"));
}

TEST_F(PosixEnvTest, WriteFileAtomicReplacesAndLeavesNoTempFile) {
  const std::string path = dir_ + "/checkpoint";
  ASSERT_TRUE(IsOk(env_->WriteFileAtomic(path, B("old"))));
  ASSERT_TRUE(IsOk(env_->WriteFileAtomic(path, B("new content"))));
  EXPECT_EQ(Take(env_->ReadFile(path)), B("new content"));
  EXPECT_FALSE(env_->Exists(path + ".tmp"));
  ASSERT_TRUE(IsOk(env_->WriteFileAtomic(path, {})));
  EXPECT_TRUE(env_->ReadFile(path)->empty());
}

TEST_F(PosixEnvTest, ErrorsNameThePathAndTheCause) {
  const std::string missing = dir_ + "/no/such/file";
  Status s = env_->ReadFile(missing).status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find(missing), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("No such file or directory"), std::string::npos) << s.ToString();

  s = env_->OpenFile(missing).status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find(missing), std::string::npos) << s.ToString();

  s = env_->WriteFileAtomic(missing, B("x"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(missing), std::string::npos) << s.ToString();

  // Renaming onto a non-empty directory fails; the temp file is removed.
  ASSERT_TRUE(IsOk(env_->CreateDir(dir_ + "/d")));
  ASSERT_TRUE(IsOk(env_->WriteFileAtomic(dir_ + "/d/x", B("x"))));
  s = env_->WriteFileAtomic(dir_ + "/d", B("y"));
  EXPECT_EQ(s.code(), Code::kIoError) << s.ToString();
  EXPECT_FALSE(env_->Exists(dir_ + "/d.tmp"));
}

TEST_F(PosixEnvTest, CreateDirIsIdempotent) {
  const std::string path = dir_ + "/sub";
  ASSERT_TRUE(IsOk(env_->CreateDir(path)));
  ASSERT_TRUE(IsOk(env_->CreateDir(path)));
  EXPECT_TRUE(env_->Exists(path));
  ASSERT_TRUE(IsOk(env_->WriteFileAtomic(path + "/f", B("x"))));
  EXPECT_EQ(env_->CreateDir(path + "/f").code(), Code::kAlreadyExists);
}

TEST(MemoryEnvTest, DropUnsyncedLosesOnlyUnsyncedBytes) {
  MemoryEnv env;
  std::unique_ptr<File> f = Take(env.OpenFile("/a"));
  std::unique_ptr<File> never_synced = Take(env.OpenFile("/b"));
  ASSERT_TRUE(IsOk(f->Append(B("abc"))));
  ASSERT_TRUE(IsOk(f->Sync()));
  ASSERT_TRUE(IsOk(f->Append(B("def"))));
  ASSERT_TRUE(IsOk(never_synced->Append(B("lost"))));
  env.DropUnsynced();
  EXPECT_EQ(ReadAll(*f), B("abc"));
  EXPECT_EQ(ReadAll(*never_synced), Bytes{});
  EXPECT_TRUE(env.Exists("/b"));

  // A truncation is durable only once synced, too.
  ASSERT_TRUE(IsOk(f->Truncate(1)));
  ASSERT_TRUE(IsOk(f->Append(B("x"))));
  env.DropUnsynced();
  EXPECT_EQ(ReadAll(*f), B("abc"));
  ASSERT_TRUE(IsOk(f->Truncate(1)));
  ASSERT_TRUE(IsOk(f->Append(B("x"))));
  ASSERT_TRUE(IsOk(f->Sync()));
  ASSERT_TRUE(IsOk(f->Append(B("y"))));
  env.DropUnsynced();
  EXPECT_EQ(ReadAll(*f), B("ax"));
}

TEST(MemoryEnvTest, InjectedFailuresTearWritesAndSkipSyncs) {
  MemoryEnv env;
  std::unique_ptr<File> f = Take(env.OpenFile("/a"));
  env.FailNextWrites(2);
  EXPECT_EQ(f->Append(B("1234")).code(), Code::kIoError);
  EXPECT_EQ(f->Append(B("56")).code(), Code::kIoError);
  ASSERT_TRUE(IsOk(f->Append(B("78"))));
  EXPECT_EQ(ReadAll(*f), B("12578"));  // half of each failed write
  env.FailNextSyncs(1);
  EXPECT_EQ(f->Sync().code(), Code::kIoError);
  env.DropUnsynced();
  EXPECT_EQ(ReadAll(*f), Bytes{});
}

TEST(MemoryEnvTest, WriteFileAtomicKeepsOldContentWhenItFails) {
  MemoryEnv env;
  EXPECT_EQ(env.ReadFile("/ckpt").status().code(), Code::kNotFound);
  ASSERT_TRUE(IsOk(env.WriteFileAtomic("/ckpt", B("old"))));
  std::unique_ptr<File> open_before = Take(env.OpenFile("/ckpt"));

  env.FailNextWrites(1);  // fails midway through the data
  EXPECT_EQ(env.WriteFileAtomic("/ckpt", B("new content")).code(), Code::kIoError);
  EXPECT_EQ(Take(env.ReadFile("/ckpt")), B("old"));
  env.FailNextSyncs(1);
  EXPECT_EQ(env.WriteFileAtomic("/ckpt", B("new content")).code(), Code::kIoError);
  EXPECT_EQ(Take(env.ReadFile("/ckpt")), B("old"));
  EXPECT_FALSE(env.Exists("/ckpt.tmp"));

  ASSERT_TRUE(IsOk(env.WriteFileAtomic("/ckpt", B("new content"))));
  env.DropUnsynced();  // it was synced before the rename
  EXPECT_EQ(Take(env.ReadFile("/ckpt")), B("new content"));
  EXPECT_EQ(ReadAll(*open_before), B("old"));  // a handle keeps the replaced file
}

TEST(MemoryEnvTest, NewMemoryEnvIsIndependent) {
  std::unique_ptr<Env> a = NewMemoryEnv(), b = NewMemoryEnv();
  ASSERT_TRUE(IsOk(a->WriteFileAtomic("/x", B("1"))));
  EXPECT_FALSE(b->Exists("/x"));
  ASSERT_TRUE(IsOk(a->CreateDir("/d")));
  EXPECT_TRUE(a->Exists("/d"));
}

}  // namespace
}  // namespace pstorage::engine
