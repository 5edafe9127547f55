// NBD over TLS (NBD_OPT_STARTTLS) against libnbd's tools, which use GnuTLS:
// a test CA and a server certificate for 127.0.0.1 made with the openssl
// CLI; with nbd_tls "require" only TLS clients get in, with "on" both do,
// and images move through TLS both ways unchanged.
#include <gtest/gtest.h>

#include <string>

#include "tests/api/nbd_test_util.h"

namespace pstorage::api::testing {
namespace {

#define REQUIRE_TOOLS(...)                                                                      \
  for (const char* tool : {__VA_ARGS__}) {                                                      \
    if (!HaveTool(tool)) GTEST_SKIP() << tool << " is not installed (scripts/install-deps.sh)"; \
  }

// libnbd reads DIR/ca-cert.pem (tls-certificates=DIR) to verify the server.
void MakeCertificates(const std::string& dir, const std::string& sub = "tls") {
  const std::string d = dir + "/" + sub;
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  CmdResult r = RunCmd(
      "set -e; mkdir -p " + d + "; cd " + d + "; openssl req -x509" + ec +
      " -keyout ca-key.pem -out ca-cert.pem -days 2 -subj /CN=pstorage-test-ca; openssl req" +
      ec + " -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1;" +
      " printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf;" +
      " openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial" +
      " -out server-cert.pem -days 2 -extfile ext.cnf");
  ASSERT_EQ(0, r.exit_code) << r.output;
}

ServerOptions TlsServerOptions(const std::string& mode) {
  ServerOptions o;
  o.flash_bytes = 256ull << 20;
  // Relative: resolved against the config folder (the test's folder).
  o.extra_json = "  \"nbd_tls\": \"" + mode +
                 "\",\n  \"nbd_tls_certificate\": \"tls/server-cert.pem\",\n"
                 "  \"nbd_tls_key\": \"tls/server-key.pem\",\n";
  return o;
}

std::string PlainUri(const ServerProcess& s, const std::string& exp) {
  return "nbd://127.0.0.1:" + std::to_string(s.nbd_port()) + "/" + exp;
}

std::string TlsUri(const ServerProcess& s, const std::string& exp) {
  return "nbds://127.0.0.1:" + std::to_string(s.nbd_port()) + "/" + exp +
         "?tls-certificates=" + s.dir() + "/tls";
}

TEST(NbdTlsTest, RequireServesOnlyTlsClientsAndImagesRoundTrip) {
  REQUIRE_TOOLS("openssl", "nbdinfo", "nbdcopy");
  ServerProcess server("nbd-tls-require", TlsServerOptions("require"));
  MakeCertificates(server.dir());
  ASSERT_TRUE(server.Start()) << server.stderr_text();
  CreateVolume(server, "vol", 8 << 20);
  CreateVolume(server, "copy", 8 << 20);

  CmdResult r = RunCmd("nbdinfo '" + TlsUri(server, "vol") + "'");
  EXPECT_EQ(0, r.exit_code) << r.output;
  EXPECT_NE(std::string::npos, r.output.find("8388608")) << r.output;
  r = RunCmd("nbdinfo '" + PlainUri(server, "vol") + "'");
  EXPECT_NE(0, r.exit_code) << "a plain client must be refused: " << r.output;
  r = RunCmd("nbdinfo --list '" + PlainUri(server, "") + "'");
  EXPECT_NE(0, r.exit_code) << "listing needs TLS too: " << r.output;
  // A client that trusts another CA gets nothing.
  MakeCertificates(server.dir(), "other-ca");
  r = RunCmd("nbdinfo 'nbds://127.0.0.1:" + std::to_string(server.nbd_port()) +
             "/vol?tls-certificates=" + server.dir() + "/other-ca'");
  EXPECT_NE(0, r.exit_code) << r.output;

  {  // The protocol before TLS: only STARTTLS and ABORT are served.
    RawNbd c(server.nbd_port());
    ASSERT_TRUE(c.Hello());
    std::string data;
    ASSERT_TRUE(c.SendOption(nbd::kOptList, ""));
    EXPECT_EQ(nbd::kRepErrTlsReqd, c.OptionReply(nbd::kOptList, &data));
    ASSERT_TRUE(c.SendOption(nbd::kOptStructuredReply, ""));
    EXPECT_EQ(nbd::kRepErrTlsReqd, c.OptionReply(nbd::kOptStructuredReply, &data));
    ASSERT_TRUE(c.SendOption(nbd::kOptStartTls, "x"));
    EXPECT_EQ(nbd::kRepErrInvalid, c.OptionReply(nbd::kOptStartTls, &data));
    ASSERT_TRUE(c.SendOption(nbd::kOptExportName, "vol"));
    EXPECT_TRUE(c.Closed()) << "EXPORT_NAME has no error reply: the server closes";
  }
  {  // STARTTLS acknowledged, then no TLS handshake: the connection ends.
    RawNbd c(server.nbd_port());
    ASSERT_TRUE(c.Hello());
    std::string data;
    ASSERT_TRUE(c.SendOption(nbd::kOptStartTls, ""));
    EXPECT_EQ(nbd::kRepAck, c.OptionReply(nbd::kOptStartTls, &data));
    ASSERT_TRUE(c.SendOption(nbd::kOptList, ""));
    EXPECT_TRUE(c.Closed());
  }

  // In and out, then volume to volume, all through TLS.
  const std::string image = MixedImage(6 << 20, 7);
  const std::string in = server.dir() + "/in.img";
  const std::string out = server.dir() + "/out.img";
  const std::string out2 = server.dir() + "/out2.img";
  WriteFileBytes(in, image);
  r = RunCmd("nbdcopy " + in + " '" + TlsUri(server, "vol") + "'");
  ASSERT_EQ(0, r.exit_code) << r.output;
  r = RunCmd("nbdcopy '" + TlsUri(server, "vol") + "' " + out);
  ASSERT_EQ(0, r.exit_code) << r.output;
  r = RunCmd("nbdcopy '" + TlsUri(server, "vol") + "' '" + TlsUri(server, "copy") +
             "' && nbdcopy '" + TlsUri(server, "copy") + "' " + out2);
  ASSERT_EQ(0, r.exit_code) << r.output;
  const std::string want = ReadFileText(in).substr(0, 6 << 20);
  EXPECT_TRUE(ReadFileText(out).substr(0, 6 << 20) == want) << "TLS round trip";
  EXPECT_TRUE(ReadFileText(out2).substr(0, 6 << 20) == want) << "TLS volume to volume";
  // The same check as a user would run it (the volumes are 8 MiB, the image 6).
  r = RunCmd("for f in " + in + " " + out + " " + out2 +
             "; do head -c 6291456 $f | sha256sum; done | uniq | wc -l");
  EXPECT_EQ("1\n", r.output) << "sha256 of the image and both copies differ";
}

TEST(NbdTlsTest, OnServesBothAndOffRefusesStartTls) {
  REQUIRE_TOOLS("openssl", "nbdinfo", "nbdcopy");
  {
    ServerProcess server("nbd-tls-on", TlsServerOptions("on"));
    MakeCertificates(server.dir());
    ASSERT_TRUE(server.Start()) << server.stderr_text();
    CreateVolume(server, "vol", 4 << 20);
    const std::string image = MixedImage(4 << 20, 11);
    const std::string in = server.dir() + "/in.img";
    const std::string out = server.dir() + "/out.img";
    WriteFileBytes(in, image);
    CmdResult r = RunCmd("nbdcopy " + in + " '" + TlsUri(server, "vol") + "'");
    ASSERT_EQ(0, r.exit_code) << r.output;
    r = RunCmd("nbdcopy '" + PlainUri(server, "vol") + "' " + out);
    ASSERT_EQ(0, r.exit_code) << r.output;
    EXPECT_TRUE(ReadFileText(out) == image) << "written through TLS, read in the clear";
    EXPECT_EQ(0, RunCmd("nbdinfo '" + PlainUri(server, "vol") + "'").exit_code);
    EXPECT_EQ(0, RunCmd("nbdinfo '" + TlsUri(server, "vol") + "'").exit_code);
  }
  // TLS off: STARTTLS is refused, so nbds:// fails and nbd:// works.
  ServerProcess server("nbd-tls-off", ServerOptions{});
  MakeCertificates(server.dir());
  ASSERT_TRUE(server.Start()) << server.stderr_text();
  CreateVolume(server, "vol", 1 << 20);
  RawNbd c(server.nbd_port());
  ASSERT_TRUE(c.Hello());
  std::string data;
  ASSERT_TRUE(c.SendOption(nbd::kOptStartTls, ""));
  EXPECT_EQ(nbd::kRepErrPolicy, c.OptionReply(nbd::kOptStartTls, &data));
  EXPECT_TRUE(c.Go("vol")) << "the connection goes on in the clear";
  EXPECT_NE(0, RunCmd("nbdinfo '" + TlsUri(server, "vol") + "'").exit_code);
  EXPECT_EQ(0, RunCmd("nbdinfo '" + PlainUri(server, "vol") + "'").exit_code);
}

}  // namespace
}  // namespace pstorage::api::testing
