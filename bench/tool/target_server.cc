// --target rest and --target nbd: a running `pstorage serve`. Both create
// their volume (and clones) through the REST API and read its metrics
// before and after; rest moves the data with PUT/GET .../data, nbd through
// the server's NBD export with the tool's own client. --target nbd with only
// --nbd-url drives any NBD server (nbdkit for the peer comparison).
#include <unistd.h>

#include "bench/tool/bench.h"
#include "bench/tool/nbd_client.h"
#include "bench/tool/rest_api.h"

namespace pstorage::bench {
namespace {

// A volume to run on: REST id and export name.
struct Unit {
  std::string id;
  std::string name;
};

class ServerTarget : public Target {
 public:
  Status Setup(const BenchOptions& o) override {
    options_ = o;
    if (o.url.empty()) return Status::Ok();  // nbd to a bare export: nothing to set up
    Result<Url> url = ParseUrl(o.url, "http", 8000);
    if (!url.ok()) return Status::InvalidArgument("--url " + url.status().message());
    rest_ = std::make_unique<RestApi>(*url, o.api_key);
    std::string name = o.volume.empty() ? "pstorage-bench-" + std::to_string(getpid()) : o.volume;
    bool created = false;
    Result<std::string> id = rest_->EnsureVolume(name, o.working_set, &created);
    if (!id.ok()) return id.status();
    if (created && o.volume.empty()) created_.push_back(*id);
    units_ = {{*id, name}};
    return Status::Ok();
  }

  Status AfterPrefill() override {
    if (options_.clones == 0 || !rest_) return Status::Ok();
    Unit golden = units_[0];
    units_.clear();
    for (int i = 0; i < options_.clones; i++) {
      std::string name = golden.name + "-clone-" + std::to_string(i);
      Result<std::string> id = rest_->Clone(golden.id, name);
      if (!id.ok()) return id.status();
      created_.insert(created_.begin(), *id);  // clones are deleted before the golden volume
      units_.push_back({*id, name});
    }
    return Status::Ok();
  }

  int units() const override { return std::max<int>(1, static_cast<int>(units_.size())); }

  ServerMetrics Metrics() override { return rest_ ? rest_->Metrics() : ServerMetrics{}; }

  void Teardown() override {
    if (!rest_) return;
    for (const std::string& id : created_) (void)rest_->DeleteVolume(id);
    created_.clear();
  }

 protected:
  BenchOptions options_;
  std::unique_ptr<RestApi> rest_;
  std::vector<Unit> units_;
  std::vector<std::string> created_;  // volume ids to delete at the end
};

// ---- rest ----

class RestSession : public Session {
 public:
  RestSession(const Url& url, const std::string& api_key, const std::vector<Unit>* units)
      : client_(url.host, url.port), units_(units) {
    client_.set_timeout(std::chrono::milliseconds(10000));
    if (!api_key.empty()) headers_.emplace_back("X-API-Key", api_key);
  }
  Status Write(int unit, uint64_t offset, std::span<const uint8_t> data) override {
    api::HttpHeaders h = headers_;
    h.emplace_back("Content-Type", "application/octet-stream");
    std::string path =
        "/api/v1/volumes/" + (*units_)[unit].id + "/data?offset=" + std::to_string(offset);
    std::string_view body(reinterpret_cast<const char*>(data.data()), data.size());
    Result<api::HttpResponse> r = RequestWithRetry(client_, "PUT", path, body, h, &throttled);
    if (!r.ok()) return r.status();
    if (r->status != 200) return Status::IoError(DescribeError(*r));
    return Status::Ok();
  }
  Status Read(int unit, uint64_t offset, std::span<uint8_t> out) override {
    std::string path = "/api/v1/volumes/" + (*units_)[unit].id +
                       "/data?offset=" + std::to_string(offset) +
                       "&length=" + std::to_string(out.size());
    Result<api::HttpResponse> r = RequestWithRetry(client_, "GET", path, {}, headers_, &throttled);
    if (!r.ok()) return r.status();
    if (r->status != 200) return Status::IoError(DescribeError(*r));
    if (r->body.size() != out.size()) {
      return Status::IoError("short read: " + std::to_string(r->body.size()) + " bytes");
    }
    std::copy(r->body.begin(), r->body.end(), out.begin());
    return Status::Ok();
  }

 private:
  api::HttpClient client_;
  api::HttpHeaders headers_;
  const std::vector<Unit>* units_;
};

class RestTarget : public ServerTarget {
 public:
  Result<std::unique_ptr<Session>> Connect() override {
    return std::unique_ptr<Session>(new RestSession(rest_->url(), rest_->api_key(), &units_));
  }
};

// ---- nbd ----

class NbdSession : public Session {
 public:
  explicit NbdSession(std::vector<std::unique_ptr<NbdClient>> clients)
      : clients_(std::move(clients)) {}
  Status Write(int unit, uint64_t offset, std::span<const uint8_t> data) override {
    return clients_[unit]->Write(offset, data);
  }
  Status Read(int unit, uint64_t offset, std::span<uint8_t> out) override {
    return clients_[unit]->Read(offset, out);
  }

 private:
  std::vector<std::unique_ptr<NbdClient>> clients_;  // one per unit
};

class NbdTarget : public ServerTarget {
 public:
  Status Setup(const BenchOptions& o) override {
    if (Status s = ServerTarget::Setup(o); !s.ok()) return s;
    std::string nbd = o.nbd_url;
    if (nbd.empty()) nbd = "nbd://" + rest_->url().host + ":10809";
    Result<Url> url = ParseUrl(nbd, "nbd", 10809);
    if (!url.ok()) return Status::InvalidArgument("--nbd-url " + url.status().message());
    nbd_ = *url;
    if (units_.empty()) units_ = {{"", nbd_.path}};  // a bare export
    // One connection up front: the export exists and holds the working set.
    Result<std::unique_ptr<NbdClient>> c = Open(units_[0].name);
    if (!c.ok()) return c.status();
    if ((*c)->size() < o.working_set) {
      return Status::InvalidArgument("export '" + units_[0].name + "' has " +
                                     std::to_string((*c)->size()) +
                                     " bytes, less than --working-set");
    }
    if ((*c)->read_only() && o.read_percent < 100) {
      return Status::InvalidArgument("export '" + units_[0].name + "' is read-only");
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Session>> Connect() override {
    std::vector<std::unique_ptr<NbdClient>> clients;
    for (const Unit& u : units_) {
      Result<std::unique_ptr<NbdClient>> c = Open(u.name);
      if (!c.ok()) return c.status();
      clients.push_back(std::move(*c));
    }
    return std::unique_ptr<Session>(new NbdSession(std::move(clients)));
  }

 private:
  Result<std::unique_ptr<NbdClient>> Open(const std::string& export_name) {
    return NbdClient::Connect(nbd_.host, nbd_.port, export_name, std::chrono::milliseconds(10000));
  }
  Url nbd_;
};

}  // namespace

std::unique_ptr<Target> MakeRestTarget() { return std::make_unique<RestTarget>(); }
std::unique_ptr<Target> MakeNbdTarget() { return std::make_unique<NbdTarget>(); }

}  // namespace pstorage::bench
