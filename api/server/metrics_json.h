// JSON renderings shared by the metrics routes, /health and cluster status.
#pragma once

#include "api/server/json.h"
#include "engine/engine.h"

namespace pstorage::api {

void WriteReductionMetrics(JsonWriter& w, const engine::ReductionStats& r);
void WriteFlashMetrics(JsonWriter& w, const flash::FlashMetrics& m);
void WriteVolumeMetrics(JsonWriter& w, engine::Engine& e);
void WriteReplicationMetrics(JsonWriter& w);
// A single node: its own primary, always in quorum.
void WriteClusterStatus(JsonWriter& w);

}  // namespace pstorage::api
