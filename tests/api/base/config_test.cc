// LoadOrCreateConfig: the first run, later runs, the admin key rules, path
// resolution, and a table of bad files whose errors must name the line and
// the key. Files live in /var/tmp/pstorage-config-test-<pid>, removed after
// each test.
#include "api/config.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "api/auth.h"
#include "tests/status_matchers.h"

namespace pstorage::api {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/var/tmp/pstorage-config-test-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ + "/config.json";
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& text) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << text;
  }
  std::string Read() const {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  unsigned Mode() const {
    struct stat st {};
    EXPECT_EQ(::stat(path_.c_str(), &st), 0);
    return st.st_mode & 0777;
  }
  ino_t Inode() const {
    struct stat st {};
    EXPECT_EQ(::stat(path_.c_str(), &st), 0);
    return st.st_ino;
  }
  rapidjson::Document ReadJson() const {
    rapidjson::Document doc;
    doc.Parse(Read().c_str());
    EXPECT_FALSE(doc.HasParseError());
    return doc;
  }
  LoadedConfig Load() {
    Result<LoadedConfig> r = LoadOrCreateConfig(path_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : LoadedConfig{};
  }

  std::string dir_;
  std::string path_;
};

const rapidjson::Value& Auth(const rapidjson::Document& doc) {
  return doc["default"]["authentication"];
}

TEST_F(ConfigTest, FirstRunCreatesTheFileWithDefaultsAndOnlyTheKeyHash) {
  path_ = dir_ + "/etc/pstorage/config.json";  // the folders do not exist yet
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.file_created);
  EXPECT_FALSE(loaded.file_rewritten);
  const std::string& key = loaded.generated_api_key;
  ASSERT_EQ(key.size(), 47u);
  EXPECT_EQ(key.substr(0, 4), "psk_");

  const ServerConfig& c = loaded.config;
  EXPECT_EQ(c.path, path_);
  EXPECT_EQ(c.auth.api_key_hash, HashApiKey(key));
  EXPECT_TRUE(VerifyApiKey(key, c.auth.api_key_hash));
  EXPECT_TRUE(c.auth.enabled);
  EXPECT_FALSE(c.auth.save_api_key_to_file);
  EXPECT_EQ(c.version, 1);
  EXPECT_EQ(c.server_port, 8000);
  EXPECT_EQ(c.bind_address, "127.0.0.1");
  EXPECT_EQ(c.server_threads, 0);
  EXPECT_EQ(c.max_body_bytes, 8u << 20);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_TRUE(c.rate_limit.enabled);
  EXPECT_EQ(c.rate_limit.requests_per_second, 5000);
  EXPECT_EQ(c.rate_limit.burst, 10000u);
  EXPECT_EQ(c.persistent_file_path, dir_ + "/etc/pstorage/storage_data");
  EXPECT_EQ(c.array.data_dir, dir_ + "/etc/pstorage/pstorage-data");
  EXPECT_EQ(c.array.flash_capacity_bytes, 268435456u);
  EXPECT_EQ(c.array.pages_per_block, 256u);
  EXPECT_DOUBLE_EQ(c.array.over_provisioning, 0.10);
  EXPECT_TRUE(c.array.dedupe_verify);
  EXPECT_EQ(c.array.compression, "lz4");
  EXPECT_EQ(c.array.cache_bytes, 64ull << 20);
  ASSERT_EQ(c.projects.size(), 1u) << "a new file gets the seed's default project";
  EXPECT_EQ(c.projects[0].id, "first_project");
  EXPECT_TRUE(c.projects[0].on_disk);
  EXPECT_TRUE(c.projects[0].cache_in_memory);
  EXPECT_TRUE(c.projects[0].auth.enabled);
  ASSERT_EQ(loaded.generated_project_keys.size(), 1u);
  EXPECT_EQ(loaded.generated_project_keys[0].first, "first_project");
  EXPECT_TRUE(VerifyApiKey(loaded.generated_project_keys[0].second,
                           c.projects[0].auth.api_key_hash));
  EXPECT_NE(loaded.generated_project_keys[0].second, key);
  EXPECT_EQ(Read().find(loaded.generated_project_keys[0].second), std::string::npos);

  EXPECT_EQ(Mode(), 0600u);
  const std::string text = Read();
  EXPECT_EQ(text.find(key), std::string::npos) << "the plain key must not be written";
  EXPECT_NE(text.find("\n  \"version\": 1,\n"), std::string::npos) << "2-space indent:\n" << text;
  const rapidjson::Document doc = ReadJson();
  EXPECT_TRUE(Auth(doc)["api_key"].IsNull());
  EXPECT_EQ(Auth(doc)["api_key_hash"].GetString(), HashApiKey(key));
  EXPECT_EQ(doc["default"]["storage"]["persistent_file_path"].GetString(),
            std::string("storage_data/")) << "the file keeps the relative path";
  EXPECT_TRUE(doc["projects"].IsArray());

  std::vector<std::string> names;  // no temp file left behind
  for (const auto& e : fs::directory_iterator(fs::path(path_).parent_path())) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"config.json"});
}

TEST_F(ConfigTest, SecondRunLoadsWithoutGeneratingOrRewriting) {
  const LoadedConfig first = Load();
  const std::string text = Read();
  const ino_t inode = Inode();

  const LoadedConfig second = Load();
  EXPECT_FALSE(second.file_created);
  EXPECT_FALSE(second.file_rewritten);
  EXPECT_TRUE(second.generated_api_key.empty());
  EXPECT_EQ(second.config.auth.api_key_hash, first.config.auth.api_key_hash);
  EXPECT_TRUE(VerifyApiKey(first.generated_api_key, second.config.auth.api_key_hash));
  EXPECT_EQ(Read(), text);
  EXPECT_EQ(Inode(), inode) << "not even an identical rewrite";
}

TEST_F(ConfigTest, PlainKeyIsHashedAndStrippedKeepingEveryOtherValue) {
  Write(R"({
    "version": 1, "server_port": 9100, "log_level": "debug", "server_threads": 3,
    "rate_limit": {"requests_per_second": 0.5, "burst": 7},
    "default": {"authentication": {"api_key": "my-own-admin-key"}},
    "array": {"pages_per_block": 64, "over_provisioning": 0.25},
    "projects": [{"id": "first_project", "storage": {"on_disk": false},
                  "authentication": {"api_key": "project-key"}}]
  })");
  ::chmod(path_.c_str(), 0644);
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.generated_api_key.empty()) << "the file's key is used";
  EXPECT_TRUE(loaded.file_rewritten);
  EXPECT_EQ(loaded.config.auth.api_key_hash, HashApiKey("my-own-admin-key"));

  EXPECT_EQ(Read().find("my-own-admin-key"), std::string::npos);
  EXPECT_EQ(Mode(), 0600u);
  const rapidjson::Document doc = ReadJson();
  EXPECT_TRUE(Auth(doc)["api_key"].IsNull());
  EXPECT_EQ(Auth(doc)["api_key_hash"].GetString(), HashApiKey("my-own-admin-key"));

  const LoadedConfig again = Load();
  EXPECT_FALSE(again.file_rewritten);
  const ServerConfig& c = again.config;
  EXPECT_EQ(c.server_port, 9100);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.server_threads, 3);
  EXPECT_EQ(c.rate_limit.requests_per_second, 0.5);
  EXPECT_EQ(c.rate_limit.burst, 7u);
  EXPECT_EQ(c.array.pages_per_block, 64u);
  EXPECT_EQ(c.array.over_provisioning, 0.25);
  ASSERT_EQ(c.projects.size(), 1u);
  EXPECT_EQ(c.projects[0].id, "first_project");
  EXPECT_FALSE(c.projects[0].on_disk);
  EXPECT_EQ(c.projects[0].auth.api_key_hash, HashApiKey("project-key"));
  EXPECT_TRUE(c.projects[0].api_key.empty());
  EXPECT_EQ(Read().find("project-key"), std::string::npos) << "project keys follow the same rule";
  EXPECT_TRUE(again.generated_project_keys.empty());
}

TEST_F(ConfigTest, SaveConfigKeepsPathsAsWrittenAndEveryProject) {
  Write(R"({"default": {"storage": {"persistent_file_path": "kvdata/"}},
            "projects": [{"id": "a", "authentication": {"enabled": false}}]})");
  LoadedConfig loaded = Load();
  ServerConfig c = loaded.config;
  ProjectConfig b;
  b.id = "b-2";
  b.on_disk = false;
  bool changed = false;
  const std::string key = ApplyProjectKeyRules(&b, &changed);
  EXPECT_TRUE(changed);
  EXPECT_TRUE(VerifyApiKey(key, b.auth.api_key_hash));
  c.projects.push_back(b);
  ASSERT_TRUE(SaveConfig(c).ok());
  EXPECT_EQ(Mode(), 0600u);
  const rapidjson::Document doc = ReadJson();
  EXPECT_STREQ(doc["default"]["storage"]["persistent_file_path"].GetString(), "kvdata/");
  const LoadedConfig again = Load();
  EXPECT_FALSE(again.file_rewritten);
  ASSERT_EQ(again.config.projects.size(), 2u);
  EXPECT_FALSE(again.config.projects[0].auth.enabled);
  EXPECT_EQ(again.config.projects[1].id, "b-2");
  EXPECT_FALSE(again.config.projects[1].on_disk);
  EXPECT_EQ(again.config.projects[1].auth.api_key_hash, b.auth.api_key_hash);
  EXPECT_EQ(again.config.persistent_file_path, loaded.config.persistent_file_path);
}

TEST_F(ConfigTest, ProjectIdsAreNeverPaths) {
  for (const char* ok : {"a", "first_project", "A-b_9", "x123456789012345678901234567890123456789012345678901234567890123"}) {
    EXPECT_EQ(ValidProjectId(ok), std::string_view(ok).size() <= 64) << ok;
  }
  for (const char* bad : {"", ".", "..", "a/b", "a.b", "a b", "../x", "a\\b", "é"}) {
    EXPECT_FALSE(ValidProjectId(bad)) << bad;
  }
}

TEST_F(ConfigTest, PlainKeyStaysWhenSavingIsOn) {
  Write(R"({"default": {"authentication": {"save_api_key_to_file": true,
                                           "api_key": "kept-in-the-file"}}})");
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.file_rewritten) << "the hash was added";
  const rapidjson::Document doc = ReadJson();
  EXPECT_EQ(Auth(doc)["api_key"].GetString(), std::string("kept-in-the-file"));
  EXPECT_EQ(Auth(doc)["api_key_hash"].GetString(), HashApiKey("kept-in-the-file"));
  EXPECT_FALSE(Load().file_rewritten) << "key and hash agree now";
}

TEST_F(ConfigTest, ChangedKeyUpdatesTheHash) {
  Write(R"({"default": {"authentication": {"save_api_key_to_file": true,
      "api_key": "the-new-key", "api_key_hash": ")" + HashApiKey("the-old-key") + R"("}}})");
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.file_rewritten);
  EXPECT_TRUE(loaded.generated_api_key.empty());
  EXPECT_EQ(loaded.config.auth.api_key_hash, HashApiKey("the-new-key"));
  EXPECT_EQ(Auth(ReadJson())["api_key_hash"].GetString(), HashApiKey("the-new-key"));
}

TEST_F(ConfigTest, StoredHashAloneIsUsedAsIs) {
  const std::string hash = HashApiKey("whatever");
  Write(R"({"default": {"authentication": {"api_key_hash": ")" + hash + R"("}}})");
  const std::string before = Read();
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.generated_api_key.empty());
  EXPECT_FALSE(loaded.file_rewritten) << "missing keys take defaults without a rewrite";
  EXPECT_EQ(loaded.config.auth.api_key_hash, hash);
  EXPECT_EQ(Read(), before);
}

TEST_F(ConfigTest, GeneratedKeyIsWrittenOnlyWhenSavingIsOn) {
  Write(R"({"default": {"authentication": {"save_api_key_to_file": true}}})");
  const LoadedConfig loaded = Load();
  ASSERT_FALSE(loaded.generated_api_key.empty());
  EXPECT_TRUE(loaded.file_rewritten);
  const rapidjson::Document doc = ReadJson();
  EXPECT_EQ(Auth(doc)["api_key"].GetString(), loaded.generated_api_key);
  EXPECT_TRUE(Load().generated_api_key.empty());
}

TEST_F(ConfigTest, DisabledAuthenticationGeneratesNothing) {
  Write(R"({"default": {"authentication": {"enabled": false, "api_key_hash": null}}})");
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.generated_api_key.empty());
  EXPECT_FALSE(loaded.file_rewritten);
  EXPECT_FALSE(loaded.config.auth.enabled);
  EXPECT_EQ(loaded.config.auth.api_key_hash, "");
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheFileFolder) {
  fs::create_directories(dir_ + "/etc");
  path_ = dir_ + "/etc/config.json";
  Write(R"({"default": {"storage": {"persistent_file_path": "../kv/"},
                        "authentication": {"api_key": "forces-a-rewrite"}},
            "array": {"data_dir": "data/array"}})");
  // A path with ".." reaches the same file and is normalized.
  Result<LoadedConfig> r = LoadOrCreateConfig(dir_ + "/etc/../etc/config.json");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->config.path, path_);
  EXPECT_EQ(r->config.persistent_file_path, dir_ + "/kv");
  EXPECT_EQ(r->config.array.data_dir, dir_ + "/etc/data/array");
  ASSERT_TRUE(r->file_rewritten);
  const rapidjson::Document doc = ReadJson();
  EXPECT_EQ(doc["default"]["storage"]["persistent_file_path"].GetString(), std::string("../kv/"));
  EXPECT_EQ(doc["array"]["data_dir"].GetString(), std::string("data/array"));

  Write(R"({"array": {"data_dir": "/srv/pstorage/"}, "default": {"authentication": {
      "enabled": false}}})");
  EXPECT_EQ(Load().config.array.data_dir, "/srv/pstorage");
}

TEST_F(ConfigTest, MinimalFileGetsTheCanonicalShapeOnRewrite) {
  Write("{}");
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.file_rewritten);
  const rapidjson::Document doc = ReadJson();
  for (const char* key : {"version", "server_port", "bind_address", "server_threads",
                          "max_body_bytes", "log_level", "rate_limit", "default", "array",
                          "kv", "projects"}) {
    EXPECT_TRUE(doc.HasMember(key)) << key;
  }
  EXPECT_EQ(doc["rate_limit"]["requests_per_second"].GetInt(), 5000) << "written as an integer";
}

TEST_F(ConfigTest, NbdKeysHaveDefaultsAndSurviveARewrite) {
  Write("{}");
  ServerConfig c = Load().config;
  EXPECT_TRUE(c.nbd_enabled);
  EXPECT_EQ(c.nbd_port, 10809);
  EXPECT_EQ(c.nbd_bind_address, "127.0.0.1");
  EXPECT_FALSE(c.nbd_allowed_exports.has_value()) << "absent means every export";
  {
    const rapidjson::Document doc = ReadJson();
    EXPECT_TRUE(doc["nbd_enabled"].GetBool());
    EXPECT_EQ(doc["nbd_port"].GetInt(), 10809);
    EXPECT_STREQ(doc["nbd_bind_address"].GetString(), "127.0.0.1");
    EXPECT_FALSE(doc.HasMember("nbd_allowed_exports"));
  }

  // Set values are kept when the file is rewritten (here: a plain key to hash).
  Write(R"({"nbd_enabled": false, "nbd_port": 0, "nbd_bind_address": "0.0.0.0",
            "nbd_allowed_exports": ["vol", "vol@snap"],
            "default": {"authentication": {"api_key": "k"}}})");
  const LoadedConfig loaded = Load();
  EXPECT_TRUE(loaded.file_rewritten);
  c = loaded.config;
  EXPECT_FALSE(c.nbd_enabled);
  EXPECT_EQ(c.nbd_port, 0);
  EXPECT_EQ(c.nbd_bind_address, "0.0.0.0");
  ASSERT_TRUE(c.nbd_allowed_exports.has_value());
  EXPECT_EQ(*c.nbd_allowed_exports, (std::vector<std::string>{"vol", "vol@snap"}));
  c = Load().config;
  EXPECT_FALSE(c.nbd_enabled);
  EXPECT_EQ(c.nbd_port, 0);
  ASSERT_TRUE(c.nbd_allowed_exports.has_value());
  EXPECT_EQ(c.nbd_allowed_exports->size(), 2u);

  // An empty list allows nothing (and stays an empty list).
  Write(R"({"nbd_allowed_exports": [], "default": {"authentication": {"api_key": "k"}}})");
  c = Load().config;
  ASSERT_TRUE(c.nbd_allowed_exports.has_value());
  EXPECT_TRUE(c.nbd_allowed_exports->empty());
  EXPECT_TRUE(ReadJson()["nbd_allowed_exports"].IsArray());
}

TEST_F(ConfigTest, NbdTlsFilesResolveAgainstTheConfigFolder) {
  fs::create_directories(dir_ + "/tls");
  std::ofstream(dir_ + "/tls/cert.pem") << "certificate";
  std::ofstream(dir_ + "/key.pem") << "key";
  Write(R"({"nbd_tls": "require", "nbd_tls_certificate": "tls/cert.pem",
            "nbd_tls_key": ")" + dir_ + R"(/key.pem",
            "default": {"authentication": {"api_key": "k"}}})");
  ServerConfig c = Load().config;
  EXPECT_EQ(c.nbd_tls, "require");
  EXPECT_EQ(c.nbd_tls_certificate, dir_ + "/tls/cert.pem");
  EXPECT_EQ(c.nbd_tls_key, dir_ + "/key.pem");
  // The rewritten file (the key got hashed) keeps the paths as written.
  rapidjson::Document doc = ReadJson();
  EXPECT_STREQ(doc["nbd_tls"].GetString(), "require");
  EXPECT_STREQ(doc["nbd_tls_certificate"].GetString(), "tls/cert.pem");
  ASSERT_TRUE(SaveConfig(c).ok());
  EXPECT_STREQ(ReadJson()["nbd_tls_certificate"].GetString(), "tls/cert.pem");
  // Off by default, and with TLS off the files are not needed.
  Write(R"({"nbd_tls_certificate": "absent.pem",
            "default": {"authentication": {"api_key": "k"}}})");
  c = Load().config;
  EXPECT_EQ(c.nbd_tls, "off");
  EXPECT_FALSE(ReadJson().HasMember("nbd_tls"));
}

TEST_F(ConfigTest, FolderInsteadOfAFileIsAnIoError) {
  fs::create_directories(path_);
  Result<LoadedConfig> r = LoadOrCreateConfig(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIoError) << r.status().ToString();
}

struct BadConfig {
  const char* what;
  std::string text;
  int line;
  int column;       // syntax errors only; 0 otherwise
  std::string key;  // the key path the message must name; "" for syntax errors
  std::string problem;
};

std::vector<BadConfig> BadConfigs() {
  // The root object and 63 arrays fit; the 64th array is refused.
  std::string deepest = "projects";
  for (int i = 0; i < 63; ++i) deepest += "[0]";
  return {
      {"string for integer", "{\n  \"version\": 1,\n  \"server_port\": \"8000\"\n}", 3, 0,
       "server_port", "expected an integer in [0, 65535]"},
      {"float for integer", "{\n  \"server_port\": 8000.0\n}", 2, 0, "server_port",
       "expected an integer"},
      {"port out of range", "{\n\n  \"server_port\": 70000\n}", 3, 0, "server_port", "65535"},
      {"nested out of range", "{\n  \"array\": {\n    \"data_dir\": \"d\",\n"
                              "    \"pages_per_block\": 8\n  }\n}",
       4, 0, "array.pages_per_block", "expected an integer in [16, 4096]"},
      {"cache not whole MiB", "{\n  \"array\": {\n    \"cache_bytes\": 5000000\n  }\n}",
       3, 0, "array.cache_bytes", "expected an integer"},
      {"typo at top level", "{\n  \"version\": 1,\n  \"sever_port\": 8000\n}", 3, 0, "sever_port",
       "unknown key (allowed: version, server_port, bind_address"},
      {"typo in authentication",
       "{\"default\": {\n  \"authentication\": {\n    \"enabled\": true,\n    \"api_kye\": null}}}",
       4, 0, "default.authentication.api_kye", "unknown key"},
      {"typo in rate_limit", "{\"rate_limit\": {\"burts\": 5}}", 1, 0, "rate_limit.burts",
       "unknown key"},
      {"typo in storage", "{\"default\": {\"storage\": {\n\"path\": \"x\"}}}", 2, 0,
       "default.storage.path", "allowed: persistent_file_path"},
      {"missing comma", "{\n  \"version\": 1\n  \"server_port\": 8000\n}", 3, 3, "",
       "Missing a comma or '}' after an object member"},
      {"trailing garbage", "{\"version\": 1}\n}\n", 2, 1, "",
       "The document root must not be followed by other values"},
      {"empty file", "", 1, 1, "", "The document is empty"},
      {"version 2", "{\n\"version\": 2}", 2, 0, "version", "unsupported version (expected 1)"},
      {"projects not an array", "{\n\"projects\": {}}", 2, 0, "projects", "expected an array"},
      {"project not an object", "{\n\"projects\": [1]}", 2, 0, "projects", "[0] is not an object"},
      {"project id with a slash", "{\"projects\": [{\n\"id\": \"../etc\"}]}", 2, 0,
       "projects[0].id", "1-64 characters"},
      {"project without id", "{\"projects\": [{\"storage\": {}}]}", 1, 0, "projects[0].id",
       "missing"},
      {"duplicate project", "{\"projects\": [{\"id\": \"p\"},\n{\"id\": \"p\"}]}", 2, 0,
       "projects[1].id", "duplicate project id"},
      {"typo in project", "{\"projects\": [{\"id\": \"p\", \"stroage\": {}}]}", 1, 0,
       "projects[0].stroage", "unknown key"},
      {"typo in project storage", "{\"projects\": [{\"id\": \"p\", \"storage\": {\"ondisk\": 1}}]}",
       1, 0, "projects[0].storage.ondisk", "unknown key"},
      {"value limit past the body limit",
       "{\"max_body_bytes\": 65536,\n\"kv\": {\"max_value_bytes\": 100000}}", 2, 0,
       "kv.max_value_bytes", "must not exceed max_body_bytes (65536)"},
      {"value limit too small", "{\"kv\": {\"max_value_bytes\": 1}}", 1, 0, "kv.max_value_bytes",
       "[16, 67108864]"},
      {"host name as bind address", "{\"bind_address\": \"localhost\"}", 1, 0, "bind_address",
       "numeric IPv4"},
      {"NUL inside bind address", "{\"bind_address\": \"127.0.0.1\\u0000x\"}", 1, 0,
       "bind_address", "\\u0000"},
      {"short hash",
       "{\"default\": {\"authentication\": {\n\n\"api_key_hash\": \"sha256:abc\"}}}", 3, 0,
       "default.authentication.api_key_hash", "64 lower-case hex digits"},
      {"string for bool", "{\"default\": {\"authentication\": {\"enabled\": \"yes\"}}}", 1, 0,
       "default.authentication.enabled", "expected true or false"},
      {"number for key", "{\"default\": {\"authentication\": {\"api_key\": 123}}}", 1, 0,
       "default.authentication.api_key", "expected a string or null"},
      {"blank in key", "{\"default\": {\"authentication\": {\"api_key\": \" key\"}}}", 1, 0,
       "default.authentication.api_key", "visible ASCII"},
      {"over-provisioning too high", "{\"array\": {\n\"over_provisioning\": 0.9}}", 2, 0,
       "array.over_provisioning", "[0.02, 0.5]"},
      {"capacity not whole MiB", "{\"array\": {\"flash_capacity_bytes\": 20000000}}", 1, 0,
       "array.flash_capacity_bytes", "multiple of 1048576"},
      {"capacity too small", "{\"array\": {\"flash_capacity_bytes\": 1048576}}", 1, 0,
       "array.flash_capacity_bytes", "[16777216, 68719476736]"},
      {"body not whole pages", "{\"max_body_bytes\": 5000}", 1, 0, "max_body_bytes",
       "multiple of 4096"},
      {"unknown log level", "{\"log_level\": \"verbose\"}", 1, 0, "log_level", "one of debug"},
      {"other codec", "{\"array\": {\"compression\": \"zstd\"}}", 1, 0, "array.compression",
       "lz4"},
      {"zero rate", "{\"rate_limit\": {\"requests_per_second\": 0}}", 1, 0,
       "rate_limit.requests_per_second", "> 0"},
      {"zero burst", "{\"rate_limit\": {\"burst\": 0}}", 1, 0, "rate_limit.burst",
       "expected an integer in [1, "},
      {"too many threads", "{\"server_threads\": 300}", 1, 0, "server_threads", "[0, 256]"},
      {"empty data dir", "{\"array\": {\"data_dir\": \"\"}}", 1, 0, "array.data_dir",
       "non-empty path"},
      {"section not an object", "{\n\"default\": []}", 2, 0, "default", "expected an object"},
      {"duplicate key", "{\n\"server_port\": 1,\n\"server_port\": 2}", 3, 0, "server_port",
       "duplicate key"},
      {"root not an object", "[]", 1, 0, "(root)", "expected a JSON object"},
      {"nbd port out of range", "{\n  \"nbd_port\": -1\n}", 2, 0, "nbd_port",
       "expected an integer in [0, 65535]"},
      {"nbd_enabled not a bool", "{\"nbd_enabled\": 1}", 1, 0, "nbd_enabled",
       "expected true or false"},
      {"nbd address not numeric", "{\n\n\"nbd_bind_address\": \"localhost\"}", 3, 0,
       "nbd_bind_address", "numeric IPv4"},
      {"nbd exports not an array", "{\"nbd_allowed_exports\": \"vol\"}", 1, 0,
       "nbd_allowed_exports", "expected an array"},
      {"nbd export empty", "{\"nbd_allowed_exports\": [\"a\", \"\"]}", 1, 0,
       "nbd_allowed_exports", "entry [1] is not a string"},
      {"nbd export duplicate", "{\n\"nbd_allowed_exports\": [\"a\", \"a\"]}", 2, 0,
       "nbd_allowed_exports", "duplicates \"a\""},
      {"nbd tls unknown mode", "{\n\"nbd_tls\": \"yes\"}", 2, 0, "nbd_tls",
       "expected \"off\", \"on\" or \"require\""},
      {"nbd tls without certificate", "{\"nbd_tls\": \"on\",\n\"nbd_tls_key\": \"k.pem\"}", 1,
       0, "nbd_tls_certificate", "a PEM file is required when nbd_tls is \"on\""},
      {"nbd tls certificate missing",
       "{\"nbd_tls\": \"require\",\n\n\"nbd_tls_certificate\": \"nope/cert.pem\",\n"
       "\"nbd_tls_key\": \"nope/key.pem\"}",
       3, 0, "nbd_tls_certificate", "nope/cert.pem: No such file"},
      {"nesting too deep",
       "{\"projects\":\n" + std::string(70, '[') + std::string(70, ']') + "}", 2, 0,
       deepest, "nested deeper than 64 levels"},
  };
}

TEST_F(ConfigTest, BadConfigsNameTheLineAndTheKey) {
  for (const BadConfig& bad : BadConfigs()) {
    SCOPED_TRACE(bad.what);
    Write(bad.text);
    Result<LoadedConfig> r = LoadOrCreateConfig(path_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    const std::string m = r.status().message();
    std::string where = path_ + ":" + std::to_string(bad.line) + ":";
    if (bad.column > 0) {
      where += std::to_string(bad.column) + ": ";
    } else {
      where += " " + bad.key + ": ";
    }
    EXPECT_EQ(m.substr(0, where.size()), where) << m;
    EXPECT_NE(m.find(bad.problem), std::string::npos) << m;
    EXPECT_EQ(Read(), bad.text) << "a bad file is never rewritten";
  }
}

}  // namespace
}  // namespace pstorage::api
