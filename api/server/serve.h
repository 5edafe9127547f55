#pragma once

namespace pstorage::api {

// `pstorage serve [--config PATH] [--log-level L]`; returns the exit code.
int RunServe(int argc, char** argv);

}  // namespace pstorage::api
