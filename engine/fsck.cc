// fsck: recomputes every content reference count from the block maps,
// reads and hash-checks every stored block, and reports what disagrees.
#include <unordered_map>

#include "engine/engine_impl.h"

namespace pstorage::engine {

namespace {
constexpr size_t kMaxErrors = 20;

void Note(FsckReport* r, std::string what) {
  if (r->errors.size() < kMaxErrors) r->errors.push_back(std::move(what));
}
}  // namespace

Result<FsckReport> Engine::Impl::Fsck() const {
  std::shared_lock lock(catalog_mu_);
  std::vector<std::shared_lock<std::shared_mutex>> held;
  for (const auto& [handle, v] : volumes_by_handle_) held.emplace_back(v->mu);
  FsckReport report;
  report.volumes = volumes_.size();
  report.snapshots = snapshots_.size();

  std::vector<NodeId> roots;
  for (const auto& [handle, v] : volumes_by_handle_) roots.push_back(v->root);
  for (const auto& [handle, s] : snapshots_by_handle_) roots.push_back(s->root);
  // The content store counts one reference per entry of each distinct leaf
  // (a leaf shared by a volume and its snapshot holds one reference).
  std::unordered_map<uint32_t, uint64_t> refs;
  std::vector<std::string> node_errors;
  report.node_refcount_mismatches = nodes_->CheckRefCounts(
      roots,
      [&](const MapEntry& e) {
        if (e.kind != MapEntry::Kind::kContent) return;
        refs[uint32_t(e.value)]++;
        report.mapped_blocks++;
      },
      &node_errors);
  for (std::string& e : node_errors) Note(&report, std::move(e));

  contents_->ForEachContent([&](uint32_t id, uint32_t refcount) {
    report.contents_checked++;
    uint64_t expected = 0;
    if (auto it = refs.find(id); it != refs.end()) {
      expected = it->second;
      refs.erase(it);
    }
    if (refcount != expected) {
      if (expected == 0) {
        report.leaked_contents++;
      } else {
        report.refcount_mismatches++;
      }
      Note(&report, "content " + std::to_string(id) + ": refcount " + std::to_string(refcount) +
                        " but " + std::to_string(expected) + " references");
    }
    Status s = contents_->Verify(id);
    if (!s.ok()) {
      report.corrupt_blocks++;
      Note(&report, "content " + std::to_string(id) + ": " + s.ToString());
    }
  });
  for (const auto& [id, n] : refs) {
    report.dangling_references += n;
    Note(&report, std::to_string(n) + " reference(s) to content " + std::to_string(id) +
                      " which does not exist");
  }
  return report;
}

Result<uint64_t> Engine::Impl::DeepReduce() {
  Result<uint64_t> reclaimed = contents_->DeepReduce();
  if (!reclaimed.ok()) return reclaimed;
  // New locations become durable with the checkpoint; until then the old
  // fragments stay where they were (freed pages are not reused before it).
  PS_RETURN_IF_ERROR(Checkpoint());
  return reclaimed;
}

}  // namespace pstorage::engine
