// The NBD server against real clients (qemu-img, nbdcopy, nbdinfo, nbdsh,
// fio) and a raw socket: images in and out, commands, snapshots read-only,
// REST and NBD seeing the same bytes, hostile input, and a SIGKILL during a
// write stream. Each test starts its own `pstorage serve` (NBD on port 0).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "tests/api/nbd_test_util.h"

namespace pstorage::api::testing {
namespace {

constexpr uint64_t kImageBytes = 64ull << 20;

ServerOptions NbdServerOptions() {
  ServerOptions o;
  o.flash_bytes = 512ull << 20;
  return o;
}

std::string Uri(const ServerProcess& s, const std::string& exp) {
  return "nbd://127.0.0.1:" + std::to_string(s.nbd_port()) + "/" + exp;
}

// Skips the test when a client tool is missing (scripts/install-deps.sh installs them).
#define REQUIRE_TOOLS(...)                                                                      \
  for (const char* tool : {__VA_ARGS__}) {                                                      \
    if (!HaveTool(tool)) GTEST_SKIP() << tool << " is not installed (scripts/install-deps.sh)"; \
  }

double MBps(uint64_t bytes, std::chrono::steady_clock::duration d) {
  return static_cast<double>(bytes) / (1 << 20) / std::chrono::duration<double>(d).count();
}

uint64_t LogicalWritten(ServerProcess& s) {
  rapidjson::Document d = Json(s.Call("GET", "/api/v1/metrics/reduction"));
  return d["bytes"]["logical_written"].GetUint64();
}

TEST(NbdInteropTest, QemuImgAndNbdcopyMoveAnImageInAndOut) {
  REQUIRE_TOOLS("qemu-img", "nbdcopy", "nbdinfo");
  ServerProcess server("nbd-image", NbdServerOptions());
  ASSERT_TRUE(server.Start());
  CreateVolume(server, "img", 2 * kImageBytes);
  const std::string vol2 = CreateVolume(server, "copy", kImageBytes);
  const std::string image = MixedImage(kImageBytes, 42);
  const std::string in = server.dir() + "/in.raw";
  WriteFileBytes(in, image);
  const uint64_t written_before = LogicalWritten(server);

  auto t0 = std::chrono::steady_clock::now();
  CmdResult r = RunCmd("qemu-img convert -n -f raw -O raw " + in + " '" + Uri(server, "img") + "'");
  ASSERT_EQ(0, r.exit_code) << r.output;
  const double qemu_in = MBps(kImageBytes, std::chrono::steady_clock::now() - t0);
  r = RunCmd("qemu-img compare -f raw -F raw " + in + " '" + Uri(server, "img") + "'");
  // The export is twice the image: compare checks that the rest is zeros.
  EXPECT_EQ(0, r.exit_code) << r.output;
  r = RunCmd("qemu-img info --output=json '" + Uri(server, "img") + "'");
  ASSERT_EQ(0, r.exit_code) << r.output;
  const std::string size = "\"virtual-size\": " + std::to_string(2 * kImageBytes);
  EXPECT_NE(std::string::npos, r.output.find(size)) << r.output;
  EXPECT_GT(LogicalWritten(server), written_before) << "reduction metrics count NBD writes";

  // Out with qemu-img, in and out with nbdcopy.
  const std::string out = server.dir() + "/out.raw";
  r = RunCmd("qemu-img convert -f raw -O raw '" + Uri(server, "img") + "' " + out);
  ASSERT_EQ(0, r.exit_code) << r.output;
  EXPECT_TRUE(ReadFileText(out).substr(0, kImageBytes) == image) << "qemu-img round trip";

  t0 = std::chrono::steady_clock::now();
  r = RunCmd("nbdcopy " + in + " '" + Uri(server, "copy") + "'");
  ASSERT_EQ(0, r.exit_code) << r.output;
  const double copy_in = MBps(kImageBytes, std::chrono::steady_clock::now() - t0);
  const std::string out2 = server.dir() + "/out2.raw";
  t0 = std::chrono::steady_clock::now();
  r = RunCmd("nbdcopy '" + Uri(server, "copy") + "' " + out2);
  ASSERT_EQ(0, r.exit_code) << r.output;
  const double copy_out = MBps(kImageBytes, std::chrono::steady_clock::now() - t0);
  EXPECT_TRUE(ReadFileText(out2) == image) << "nbdcopy round trip";
  // Export to export: two exports open at once, several connections each.
  CreateVolume(server, "copy2", kImageBytes);
  r = RunCmd("nbdcopy '" + Uri(server, "copy") + "' '" + Uri(server, "copy2") + "' && " +
             "qemu-img compare -f raw -F raw '" + Uri(server, "copy") + "' '" +
             Uri(server, "copy2") + "'");
  EXPECT_EQ(0, r.exit_code) << r.output;
  // The same bytes over REST.
  EXPECT_TRUE(ReadRest(server, vol2, 3 << 20, 1 << 20) == image.substr(3 << 20, 1 << 20));
  std::printf(
      "64 MiB mixed image: qemu-img convert in %.0f MB/s; nbdcopy in %.0f MB/s, "
      "out %.0f MB/s\n",
      qemu_in, copy_in, copy_out);

  // The map: zero pieces (every 4th 64 KiB) and the unwritten half are holes.
  r = RunCmd("nbdinfo --map '" + Uri(server, "img") + "' | head -4; nbdinfo --map '" +
             Uri(server, "img") + "' | tail -1");
  ASSERT_EQ(0, r.exit_code) << r.output;
  EXPECT_NE(std::string::npos, r.output.find("65536       65536    3  hole,zero")) << r.output;
  EXPECT_NE(std::string::npos, r.output.find(std::to_string(kImageBytes) + "    " +
                                             std::to_string(kImageBytes) + "    3  hole,zero"))
      << r.output;
}

// nbdsh (Python libnbd) drives every command; `h` is connected with
// structured replies and base:allocation, and with libnbd's own checks off
// (strict mode 0) so that bad requests reach the server.
CmdResult Nbdsh(const ServerProcess& s, const std::string& exp, const std::string& script) {
  const std::string file = s.dir() + "/script.py";
  WriteFileBytes(file,
                 "h.set_strict_mode(0)\nh.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)\n"
                 "h.connect_uri('" +
                     Uri(s, exp) + "')\n" + script + "\nprint('SCRIPT-OK')\n");
  return RunCmd("nbdsh -c \"exec(open('" + file + "').read())\"");
}

TEST(NbdInteropTest, CommandsSnapshotsAndRestSeeTheSameBytes) {
  REQUIRE_TOOLS("nbdsh", "nbdinfo");
  ServerProcess server("nbd-cmds", NbdServerOptions());
  ASSERT_TRUE(server.Start());
  const std::string vol = CreateVolume(server, "vol", 4 << 20);

  CmdResult r = Nbdsh(server, "vol", R"PY(
assert h.can_trim() and h.can_zero() and h.can_flush() and h.can_fua() and h.can_multi_conn()
assert not h.is_read_only()
assert h.get_size() == 4 << 20
# Unaligned write and reads, crossing a block boundary.
h.pwrite(b"A" * 5000, 4000)
assert h.pread(5000, 4000) == b"A" * 5000
assert h.pread(10, 3995) == b"\0" * 5 + b"A" * 5
h.pwrite(b"B" * 3, 4095, nbd.CMD_FLAG_FUA)
assert h.pread(6, 4093) == b"AAB" + b"BBA"
# Whole blocks, then TRIM, WRITE_ZEROES (with and without NO_HOLE), FLUSH.
h.pwrite(b"C" * 65536, 65536)
h.trim(8192, 65536)
h.zero(8192, 65536 + 16384)
h.zero(4096, 65536 + 40000, nbd.CMD_FLAG_NO_HOLE)
h.flush()
want = b"\0" * 8192 + b"C" * 8192 + b"\0" * 8192 + b"C" * 15424 + b"\0" * 4096 + b"C" * 21440
assert h.pread(65536, 65536) == want
# Block status: data where written, holes elsewhere.
ents = []
h.block_status(1 << 20, 0, lambda ctx, off, e, err: ents.extend(e))
assert ents[0:2] == [12288, 0], ents
assert ents[-1] & 1, ents
# Out of range: errors, not crashes.
for f, errnum in ((lambda: h.pread(4096, 4 << 20), 22), (lambda: h.pwrite(b"x", 4 << 20), 28),
                  (lambda: h.pread(4096, (4 << 20) - 4095), 22)):
    try:
        f(); assert False
    except nbd.Error as e:
        assert e.errnum == errnum, e
# Data for REST to read back.
h.pwrite(bytes(range(256)) * 64, 1 << 20)
)PY");
  ASSERT_NE(std::string::npos, r.output.find("SCRIPT-OK")) << r.output;
  std::string block;
  for (int i = 0; i < 64; i++) {
    for (int b = 0; b < 256; b++) block += static_cast<char>(b);
  }
  EXPECT_TRUE(ReadRest(server, vol, 1 << 20, 16384) == block) << "NBD write, REST read";

  // REST write, NBD read.
  HttpResponse put =
      server.Call("PUT", "/api/v1/volumes/" + vol + "/data?offset=2097152", std::string(8192, 'R'),
                  {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(200, put.status) << put.body;
  r = Nbdsh(server, "vol", "assert h.pread(8192, 2 << 20) == b'R' * 8192");
  EXPECT_NE(std::string::npos, r.output.find("SCRIPT-OK")) << r.output;

  // A snapshot exports read-only as vol@snap and keeps its contents.
  HttpResponse snap =
      server.Call("POST", "/api/v1/volumes/" + vol + "/snapshots", R"({"name": "s1"})");
  ASSERT_EQ(201, snap.status) << snap.body;
  r = Nbdsh(server, "vol", "h.pwrite(b'N' * 4096, 2 << 20)");
  ASSERT_NE(std::string::npos, r.output.find("SCRIPT-OK")) << r.output;
  r = Nbdsh(server, "vol@s1", R"PY(
assert h.is_read_only()
assert h.pread(8192, 2 << 20) == b"R" * 8192
for f in (lambda: h.pwrite(b"x" * 4096, 0), lambda: h.trim(4096, 0), lambda: h.zero(4096, 0)):
    try:
        f(); assert False
    except nbd.Error as e:
        assert e.errnum == 1, e   # EPERM
ents = []
h.block_status(1 << 20, 0, lambda ctx, off, e, err: ents.extend(e))
assert ents[0:2] == [12288, 0], ents
)PY");
  EXPECT_NE(std::string::npos, r.output.find("SCRIPT-OK")) << r.output;

  r = RunCmd("nbdinfo --list 'nbd://127.0.0.1:" + std::to_string(server.nbd_port()) + "/'");
  EXPECT_NE(std::string::npos, r.output.find("export=\"vol\"")) << r.output;
  EXPECT_NE(std::string::npos, r.output.find("export=\"vol@s1\"")) << r.output;
  r = RunCmd("nbdinfo '" + Uri(server, "nope") + "'");
  EXPECT_NE(0, r.exit_code) << "an unknown export is refused";
}

TEST(NbdInteropTest, AllowedExportsHideTheRest) {
  REQUIRE_TOOLS("nbdinfo");
  ServerOptions o = NbdServerOptions();
  o.extra_json = "  \"nbd_allowed_exports\": [\"open\"],\n";
  ServerProcess server("nbd-allowed", o);
  ASSERT_TRUE(server.Start());
  CreateVolume(server, "open", 1 << 20);
  CreateVolume(server, "secret", 1 << 20);
  CmdResult r =
      RunCmd("nbdinfo --list 'nbd://127.0.0.1:" + std::to_string(server.nbd_port()) + "/'");
  EXPECT_NE(std::string::npos, r.output.find("export=\"open\"")) << r.output;
  EXPECT_EQ(std::string::npos, r.output.find("secret")) << r.output;
  EXPECT_EQ(0, RunCmd("nbdinfo '" + Uri(server, "open") + "'").exit_code);
  EXPECT_NE(0, RunCmd("nbdinfo '" + Uri(server, "secret") + "'").exit_code);
}

TEST(NbdInteropTest, HostileInputEndsOneConnectionAtMost) {
  ServerProcess server("nbd-hostile", NbdServerOptions());
  ASSERT_TRUE(server.Start());
  const std::string vol = CreateVolume(server, "vol", 1 << 20);
  RawNbd idle(server.nbd_port());  // a client that never speaks must block no one
  ASSERT_TRUE(idle.connected());

  {  // Unknown option: ERR_UNSUP, and the connection still works.
    RawNbd c(server.nbd_port());
    ASSERT_TRUE(c.Hello());
    ASSERT_TRUE(c.SendOption(99, "junk!"));
    std::string data;
    EXPECT_EQ(nbd::kRepErrUnsup, c.OptionReply(99, &data));
    ASSERT_TRUE(c.SendOption(nbd::kOptList, "x"));
    EXPECT_EQ(nbd::kRepErrInvalid, c.OptionReply(nbd::kOptList, &data)) << "LIST takes no data";
    ASSERT_TRUE(c.SendOption(nbd::kOptGo, "\xff\xff\xff\xff"));
    EXPECT_EQ(nbd::kRepErrInvalid, c.OptionReply(nbd::kOptGo, &data)) << "name overruns";
    ASSERT_TRUE(c.SendOption(nbd::kOptSetMetaContext, std::string(8, '\0')));
    EXPECT_EQ(nbd::kRepErrInvalid, c.OptionReply(nbd::kOptSetMetaContext, &data))
        << "no structured replies yet";
    ASSERT_TRUE(c.Go("vol"));

    // Transmission: huge, out-of-range and unknown requests get errors.
    ASSERT_TRUE(c.Request(nbd::kCmdRead, 1, 0, 64u << 20));
    EXPECT_EQ(nbd::kEInval, c.SimpleReply(1));
    ASSERT_TRUE(c.Request(nbd::kCmdRead, 2, (1 << 20) - 10, 4096));
    EXPECT_EQ(nbd::kEInval, c.SimpleReply(2));
    ASSERT_TRUE(c.Request(nbd::kCmdWrite, 3, 1 << 20, 4));
    ASSERT_TRUE(c.Send("abcd", 4));
    EXPECT_EQ(nbd::kENoSpc, c.SimpleReply(3));
    ASSERT_TRUE(c.Request(99, 4, 0, 0));
    EXPECT_EQ(nbd::kEInval, c.SimpleReply(4));
    ASSERT_TRUE(c.Request(nbd::kCmdRead, 5, 0, 0x1000, 0x8000));
    EXPECT_EQ(nbd::kEInval, c.SimpleReply(5)) << "unknown command flag";
    ASSERT_TRUE(c.Request(nbd::kCmdBlockStatus, 6, 0, 4096));
    EXPECT_EQ(nbd::kEInval, c.SimpleReply(6)) << "no base:allocation negotiated";
    ASSERT_TRUE(c.Request(nbd::kCmdTrim, 7, ~0ull - 100, 4096));
    EXPECT_EQ(nbd::kEInval, c.SimpleReply(7)) << "offset + length overflows";
    // Still healthy: a good write and read.
    ASSERT_TRUE(c.Request(nbd::kCmdWrite, 8, 4096, 4));
    ASSERT_TRUE(c.Send("good", 4));
    EXPECT_EQ(0u, c.SimpleReply(8));
    ASSERT_TRUE(c.Request(nbd::kCmdRead, 9, 4096, 4));
    EXPECT_EQ(0u, c.SimpleReply(9));
    EXPECT_EQ("good", c.Recv(4));
    // Bad magic: the server cannot resynchronize and closes.
    ASSERT_TRUE(c.Request(nbd::kCmdRead, 10, 0, 4096, 0, 0xdeadbeef));
    EXPECT_TRUE(c.Closed());
  }
  {  // A write whose payload is too large to skip: closed.
    RawNbd c(server.nbd_port());
    ASSERT_TRUE(c.Hello());
    ASSERT_TRUE(c.Go("vol"));
    ASSERT_TRUE(c.Request(nbd::kCmdWrite, 1, 0, 0xffffffffu));
    EXPECT_TRUE(c.Closed());
  }
  {  // Disconnect in the middle of a write payload: nothing is written.
    RawNbd c(server.nbd_port());
    ASSERT_TRUE(c.Hello());
    ASSERT_TRUE(c.Go("vol"));
    ASSERT_TRUE(c.Request(nbd::kCmdWrite, 1, 65536, 8192));
    ASSERT_TRUE(c.Send(std::string(5000, 'P').data(), 5000));
  }
  {  // Option data too large, bad option magic, bad client flags: closed.
    RawNbd a(server.nbd_port());
    ASSERT_TRUE(a.Hello());
    ASSERT_TRUE(a.SendOption(nbd::kOptGo, "", 1u << 30));
    EXPECT_TRUE(a.Closed());
    RawNbd b(server.nbd_port());
    ASSERT_TRUE(b.Hello());
    ASSERT_TRUE(b.Send(std::string(16, 'Z').data(), 16));
    EXPECT_TRUE(b.Closed());
    RawNbd c(server.nbd_port());
    ASSERT_EQ(18u, c.Recv(18).size());
    ASSERT_TRUE(c.Send("\xff\xff\xff\xff", 4));
    EXPECT_TRUE(c.Closed());
    RawNbd d(server.nbd_port());
    ASSERT_TRUE(d.Hello());
    ASSERT_TRUE(d.SendOption(nbd::kOptExportName, "nope"));
    EXPECT_TRUE(d.Closed()) << "EXPORT_NAME of an unknown export";
  }

  // The server is still fine, and the torn write left no trace.
  EXPECT_EQ(200, server.Call("GET", "/health", {}, {}, false).status);
  EXPECT_TRUE(ReadRest(server, vol, 65536, 8192) == std::string(8192, '\0'));
  RawNbd c(server.nbd_port());
  ASSERT_TRUE(c.Hello());
  ASSERT_TRUE(c.Go("vol"));
  ASSERT_TRUE(c.Request(nbd::kCmdRead, 1, 4096, 4));
  EXPECT_EQ(0u, c.SimpleReply(1));
  EXPECT_EQ("good", c.Recv(4));
  EXPECT_EQ(0, server.Stop()) << "SIGTERM with NBD clients attached exits cleanly";
}

TEST(NbdInteropTest, SigkillKeepsEveryAcknowledgedWrite) {
  REQUIRE_TOOLS("nbdsh");
  ServerProcess server("nbd-crash", NbdServerOptions());
  ASSERT_TRUE(server.Start());
  const std::string vol = CreateVolume(server, "vol", 16 << 20);
  // Block i (of 4096) gets 4096 bytes of (i % 251); after each acknowledged
  // write the script prints i. Some writes use FUA, none FLUSH.
  const std::string file = server.dir() + "/writer.py";
  WriteFileBytes(file, "import sys\nh.connect_uri('" + Uri(server, "vol") +
                           "')\n"
                           "for i in range(4096):\n"
                           "    h.pwrite(bytes([i % 251 + 1]) * 4096, i * 4096,"
                           " nbd.CMD_FLAG_FUA if i % 2 else 0)\n"
                           "    print(i, flush=True)\n");
  const std::string cmd =
      "PATH=/usr/bin:$PATH nbdsh -c \"exec(open('" + file + "').read())\" 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  int last = -1;
  char line[64];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    last = std::atoi(line);
    if (last == 300) server.Kill();  // mid-stream; the writer then fails
  }
  ::pclose(p);
  ASSERT_GE(last, 300) << "the writer did not get far enough";
  ASSERT_TRUE(server.Start());
  const std::string data = ReadRest(server, vol, 0, (static_cast<uint64_t>(last) + 1) * 4096);
  ASSERT_EQ((static_cast<size_t>(last) + 1) * 4096, data.size());
  for (int i = 0; i <= last; i++) {
    ASSERT_EQ(std::string(4096, static_cast<char>(i % 251 + 1)), data.substr(i * 4096, 4096))
        << "acknowledged block " << i << " lost";
  }
}

TEST(NbdInteropTest, FioVerifiesRandomWrites) {
  REQUIRE_TOOLS("fio");
  if (RunCmd("fio --enghelp | grep -qw nbd").exit_code != 0) {
    GTEST_SKIP() << "this fio has no nbd engine";
  }
  ServerProcess server("nbd-fio", NbdServerOptions());
  ASSERT_TRUE(server.Start());
  CreateVolume(server, "fio", 64 << 20);
  CmdResult r = RunCmd("fio --name=v --ioengine=nbd --uri='" + Uri(server, "fio") +
                       "' --rw=randwrite --bs=4k --size=16M --iodepth=16 --verify=crc32c "
                       "--do_verify=1 --refill_buffers --output-format=terse");
  EXPECT_EQ(0, r.exit_code) << r.output;
  EXPECT_EQ(std::string::npos, r.output.find("verify:")) << r.output;
}

TEST(NbdInteropTest, ConcurrentUnalignedWritesToOneBlockAreNotLost) {
  REQUIRE_TOOLS("nbdsh");
  ServerProcess server("nbd-rmw", NbdServerOptions());
  ASSERT_TRUE(server.Start());
  const std::string vol = CreateVolume(server, "vol", 1 << 20);
  // Four connections, each owning every fourth byte of one block, write
  // their bytes one at a time with many requests in flight.
  std::string cmd;
  for (int k = 0; k < 4; k++) {
    const std::string file = server.dir() + "/w" + std::to_string(k) + ".py";
    WriteFileBytes(file, "h.connect_uri('" + Uri(server, "vol") +
                             "')\n"
                             "cs = [h.aio_pwrite(bytes([" +
                             std::to_string(k + 1) +
                             "]), i)"
                             " for i in range(" +
                             std::to_string(k) +
                             ", 4096, 4)]\n"
                             "while h.aio_in_flight() > 0: h.poll(-1)\n"
                             "for c in cs: assert h.aio_command_completed(c)\n");
    cmd += "nbdsh -c \"exec(open('" + file + "').read())\" & ";
  }
  CmdResult r = RunCmd(cmd + "wait");
  EXPECT_EQ(0, r.exit_code) << r.output;
  const std::string block = ReadRest(server, vol, 0, 4096);
  ASSERT_EQ(4096u, block.size());
  for (size_t i = 0; i < 4096; i++) {
    ASSERT_EQ(static_cast<char>(i % 4 + 1), block[i]) << "byte " << i;
  }
}

TEST(NbdProtoTest, RequestsDecodeBigEndianAndRejectBadMagic) {
  uint8_t h[nbd::kRequestBytes];
  nbd::Put32(h, nbd::kRequestMagic);
  nbd::Put16(h + 4, nbd::kCmdFlagFua);
  nbd::Put16(h + 6, nbd::kCmdWrite);
  nbd::Put64(h + 8, 0x0102030405060708ull);
  nbd::Put64(h + 16, 1ull << 40);
  nbd::Put32(h + 24, 4096);
  EXPECT_EQ(0x25, h[0]);
  EXPECT_EQ(0x08, h[15]);
  nbd::Request r;
  ASSERT_TRUE(nbd::DecodeRequest(h, &r));
  EXPECT_EQ(nbd::kCmdFlagFua, r.flags);
  EXPECT_EQ(nbd::kCmdWrite, r.type);
  EXPECT_EQ(0x0102030405060708ull, r.handle);
  EXPECT_EQ(1ull << 40, r.offset);
  EXPECT_EQ(4096u, r.length);
  h[0] ^= 1;
  EXPECT_FALSE(nbd::DecodeRequest(h, &r));
}

}  // namespace
}  // namespace pstorage::api::testing
