// The OpenAPI 3 description of every route, served at /openapi.json. It is
// written by hand (api/server/openapi.json, embedded at build time) and kept
// true by a test that checks every route the router serves appears in it.
#pragma once

#include <string_view>

namespace pstorage::api {

std::string_view OpenApiDocument();

}  // namespace pstorage::api
