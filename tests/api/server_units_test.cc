// The server's pure pieces: strict JSON, field reading, base64, routing,
// the error table, and the OpenAPI document covering every route.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include "api/base64.h"
#include "api/server/http_types.h"
#include "api/server/json.h"
#include "api/server/openapi.h"
#include "api/server/router.h"
#include "tests/status_matchers.h"

namespace pstorage::api {
namespace {

TEST(StrictJsonTest, AcceptsObjectsOnly) {
  rapidjson::Document d;
  EXPECT_OK(ParseJsonObject(R"( {"a": [1, {"b": null}]} )", &d));
  for (std::string bad : {"", "  ", "[]", "1", "\"s\"", "{", "{\"a\":1}x", "{\"a\":1}{}",
                          "{\"a\":01}", "{'a':1}", "{\"a\":1,}", "{\"a\" 1}", "nul"}) {
    EXPECT_EQ(Code::kInvalidArgument, ParseJsonObject(bad, &d).code()) << bad;
  }
}

TEST(StrictJsonTest, DepthAndEncoding) {
  rapidjson::Document d;
  std::string ok = "{\"a\":" + std::string(kMaxJsonDepth - 1, '[') +
                   std::string(kMaxJsonDepth - 1, ']') + "}";
  EXPECT_OK(ParseJsonObject(ok, &d));
  std::string deep = "{\"a\":" + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  EXPECT_EQ(Code::kInvalidArgument, ParseJsonObject(deep, &d).code());
  // Brackets inside strings do not count.
  std::string s = "{\"a\":\"" + std::string(100, '[') + "\"}";
  EXPECT_OK(ParseJsonObject(s, &d));
  EXPECT_EQ(Code::kInvalidArgument, ParseJsonObject("{\"a\":\"\xc3\x28\"}", &d).code());
  EXPECT_OK(ParseJsonObject("{\"a\":\"\xc3\xa9\"}", &d));
}

TEST(FieldReaderTest, TypesRequiredUnknownDuplicate) {
  rapidjson::Document d;
  ASSERT_OK(ParseJsonObject(R"({"s": "x", "n": 4096, "f": 1.5, "t": {"k": "v"}, "z": null})", &d));
  FieldReader f(d, {"s", "n", "f", "t", "z", "missing"});
  EXPECT_EQ("x", f.String("s", true, 10).value());
  EXPECT_EQ(4096u, f.Uint64("n", true).value());
  EXPECT_EQ(1.5, f.Number("f", true).value());
  EXPECT_EQ("v", f.Tags("t")->at("k"));
  EXPECT_FALSE(f.String("z", false, 10, true).has_value());
  EXPECT_OK(f.status());
  EXPECT_FALSE(f.Uint64("missing", true).has_value());
  EXPECT_EQ(Code::kInvalidArgument, f.status().code());
  EXPECT_NE(std::string::npos, f.status().message().find("missing"));

  FieldReader g(d, {"s"});
  EXPECT_NE(std::string::npos, g.status().message().find("unknown field"));
  ASSERT_OK(ParseJsonObject(R"({"a": 1, "a": 2})", &d));
  FieldReader h(d, {"a"});
  EXPECT_NE(std::string::npos, h.status().message().find("twice"));
  ASSERT_OK(ParseJsonObject(R"({"n": -1, "m": 1.0, "s": 5})", &d));
  FieldReader i(d, {"n", "m", "s"});
  EXPECT_FALSE(i.Uint64("n", true).has_value());
  EXPECT_FALSE(i.status().ok());
  FieldReader j(d, {"n", "m", "s"});
  EXPECT_FALSE(j.Uint64("m", true).has_value());
  EXPECT_FALSE(j.status().ok());
  FieldReader k(d, {"n", "m", "s"});
  EXPECT_FALSE(k.String("s", true, 5).has_value());
  EXPECT_FALSE(k.status().ok());
}

TEST(Base64Test, RoundTripAndStrictness) {
  EXPECT_EQ("SGVsbG8gV29ybGQh", Base64Encode("Hello World!"));
  EXPECT_EQ("", Base64Encode(""));
  EXPECT_EQ("YQ==", Base64Encode("a"));
  EXPECT_EQ("YWI=", Base64Encode("ab"));
  std::string all;
  for (int i = 0; i < 256; i++) all += static_cast<char>(i);
  for (size_t n = 0; n < all.size(); n += 37) {
    Result<std::string> back = Base64Decode(Base64Encode(all.substr(0, n)));
    ASSERT_OK(back.status());
    EXPECT_EQ(all.substr(0, n), *back);
  }
  EXPECT_EQ("a", Base64Decode("YQ").value());  // padding optional
  for (std::string bad : {"Y", "YQ=", "Y===", "YQ==YQ==", "Y Q=", "YQ\n==", "!!!!", "YQ=a"}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
}

Reply Dummy(Services&, const Request&) { return {}; }

TEST(RouterTest, MatchesSegmentsParamsAndMethods) {
  Router r({{"GET", "/api/v1/volumes", Dummy},
            {"POST", "/api/v1/volumes", Dummy},
            {"GET", "/api/v1/volumes/{volume_id}", Dummy},
            {"DELETE", "/api/v1/volumes/{volume_id}/snapshots/{snapshot_id}", Dummy}});
  EXPECT_EQ(0, r.Match("GET", "/api/v1/volumes").index);
  EXPECT_EQ(0, r.Match("GET", "/api/v1/volumes/").index);
  EXPECT_EQ(1, r.Match("POST", "/api/v1/volumes").index);
  RouteMatch m = r.Match("GET", "/api/v1/volumes/abc%2Fdef");
  EXPECT_EQ(2, m.index);
  EXPECT_EQ("abc/def", m.params["volume_id"]);
  m = r.Match("DELETE", "/api/v1/volumes/v/snapshots/s");
  EXPECT_EQ(3, m.index);
  EXPECT_EQ("v", m.params["volume_id"]);
  EXPECT_EQ("s", m.params["snapshot_id"]);
  m = r.Match("PUT", "/api/v1/volumes");
  EXPECT_EQ(-1, m.index);
  EXPECT_EQ("GET, POST", m.allow);
  EXPECT_EQ(-1, r.Match("GET", "/api/v1/volumes/a/b").index);
  EXPECT_TRUE(r.Match("GET", "/api/v1/volumes/a/b").allow.empty());
  EXPECT_EQ(-1, r.Match("GET", "/api//v1/volumes").index);
  EXPECT_EQ(-1, r.Match("GET", "/api/v1/volumes/%zz").index);
}

TEST(ErrorTableTest, CodesMapToStatuses) {
  EXPECT_EQ(400, HttpStatusFor(Code::kInvalidArgument));
  EXPECT_EQ(404, HttpStatusFor(Code::kNotFound));
  EXPECT_EQ(409, HttpStatusFor(Code::kAlreadyExists));
  EXPECT_EQ(409, HttpStatusFor(Code::kFailedPrecondition));
  EXPECT_EQ(503, HttpStatusFor(Code::kNoSpace));
  EXPECT_EQ(503, HttpStatusFor(Code::kBusy));
  EXPECT_EQ(500, HttpStatusFor(Code::kCorruption));
  EXPECT_EQ(500, HttpStatusFor(Code::kIoError));
  Reply r = StatusReply(Status::NotFound("Volume x not found"), "rid");
  EXPECT_EQ(404, r.status);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  EXPECT_STREQ("Not Found", d["error"].GetString());
  EXPECT_STREQ("NOT_FOUND", d["code"].GetString());
  EXPECT_STREQ("Volume x not found", d["detail"].GetString());
  EXPECT_STREQ("rid", d["request_id"].GetString());
  EXPECT_TRUE(d["timestamp"].IsString());
}

// Error details quote request bytes; the body must stay valid UTF-8.
TEST(ErrorTableTest, DetailsAreValidUtf8) {
  EXPECT_EQ("Volume \xEF\xBF\xBD not found", ValidUtf8("Volume \xff not found"));
  EXPECT_EQ("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", ValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_EQ("\xEF\xBF\xBD\xEF\xBF\xBD", ValidUtf8("\xC0\xAF"));  // overlong '/'
  EXPECT_EQ("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", ValidUtf8("\xED\xA0\x80"));  // surrogate
  EXPECT_EQ("a\xEF\xBF\xBD\xEF\xBF\xBD", ValidUtf8("a\xE2\x82"));  // truncated: per byte
  for (int lead = 0xf5; lead <= 0xff; lead++) {  // never a lead byte, whatever follows
    std::string in = {static_cast<char>(lead), '\x96', '\x96', '\x96'};
    EXPECT_EQ(std::string("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"),
              ValidUtf8(in)) << lead;
  }
  Reply r = ErrorReply(404, "NOT_FOUND", "Volume \xff\x96\x96 not found", "rid");
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(r.body.c_str());
  EXPECT_FALSE(d.HasParseError()) << r.body;
}

// Every route the server serves is described in /openapi.json, with the
// same path template and method, and the document names no route that does
// not exist.
TEST(OpenApiTest, DocumentsEveryRouteAndNothingElse) {
  rapidjson::Document doc;
  std::string_view text = OpenApiDocument();
  doc.Parse(text.data(), text.size());
  ASSERT_FALSE(doc.HasParseError());
  ASSERT_TRUE(doc.HasMember("paths") && doc["paths"].IsObject());
  const rapidjson::Value& paths = doc["paths"];
  // OpenAPI has no catch-all parameter: the router's {key*} (the rest of
  // the path) is documented as {key}.
  std::vector<Route> routes = AllRoutes();
  for (Route& route : routes) {
    if (size_t star = route.pattern.find("*}"); star != std::string::npos) {
      route.pattern.erase(star, 1);
    }
  }
  size_t operations = 0;
  for (const Route& route : routes) {
    std::string method = route.method;
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ASSERT_TRUE(paths.HasMember(route.pattern.c_str())) << route.pattern;
    EXPECT_TRUE(paths[route.pattern.c_str()].HasMember(method.c_str()))
        << route.method << " " << route.pattern;
  }
  for (auto p = paths.MemberBegin(); p != paths.MemberEnd(); ++p) {
    for (auto op = p->value.MemberBegin(); op != p->value.MemberEnd(); ++op) {
      std::string m = op->name.GetString();
      if (m == "parameters" || m == "summary" || m == "description") continue;
      operations++;
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      bool served = false;
      for (const Route& route : routes) served = served || (route.method == m && route.pattern == p->name.GetString());
      EXPECT_TRUE(served) << "documented but not served: " << m << " " << p->name.GetString();
      EXPECT_TRUE(op->value.HasMember("responses")) << m << " " << p->name.GetString();
    }
  }
  EXPECT_EQ(routes.size(), operations);
}

TEST(JsonTest, CaptureMemberTextsKeepsNumbersVerbatimByPath) {
  const std::string body =
      R"({"value": [1.0, 184467440737095516156, {"value": "inner"}], "items": [{"key": "a", "value": 1E2},)"
      R"( {"value": {"x": -0}}], "operations": [{"conditions": [{"type": "value_equals", "value": "s"}]}]})";
  Result<std::map<std::string, std::string>> t = CaptureMemberTexts(body, "value");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((std::map<std::string, std::string>{
                {"value", R"([1.0,184467440737095516156,{"value":"inner"}])"},
                {"items[0].value", "1E2"},
                {"items[1].value", R"({"x":-0})"},
                {"operations[0].conditions[0].value", R"("s")"}}),
            *t);
  EXPECT_FALSE(CaptureMemberTexts("{\"value\": [1,}", "value").ok());
}

}  // namespace
}  // namespace pstorage::api
