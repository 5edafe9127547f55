// The compacted snapshot of a project: {dir}/{id}.json holds the plain
// {"key": value, ...} object; {dir}/{id}.meta.json holds each key's
// version, times and tags. Layout and crash order in docs/formats.md,
// "KV log and snapshot".
#pragma once

#include <map>
#include <string>

#include "common/status.h"
#include "kv/kv.h"

namespace pstorage::kv {

struct SnapshotPaths {
  std::string dir;
  std::string data;      // {dir}/{id}.json
  std::string meta;      // {dir}/{id}.meta.json
  std::string data_tmp;  // {dir}/{id}.json.tmp, while WriteSnapshot runs
  std::string meta_tmp;  // {dir}/{id}.meta.json.tmp
};
SnapshotPaths MakeSnapshotPaths(const std::string& dir, const std::string& project_id);

// Writes both files atomically: both temps written and fsynced, then meta
// renamed, then data renamed, then the directory fsynced. Only after this
// returns OK may the log be truncated.
Status WriteSnapshot(const SnapshotPaths& paths, const std::map<std::string, Entry>& entries);

// Loads the snapshot into *entries (empty when there is none). A key in the
// data file without meta gets version 1 and zero times; meta for keys not in
// the data file is ignored. kCorruption when a file does not parse.
Status LoadSnapshot(const SnapshotPaths& paths, std::map<std::string, Entry>* entries);

// Removes both files and any temps a failed WriteSnapshot left (absent
// files are fine), without syncing the directory.
Status RemoveSnapshot(const SnapshotPaths& paths);

// fsyncs a directory (after creating or renaming files in it).
Status SyncDir(const std::string& dir);

}  // namespace pstorage::kv
