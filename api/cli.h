// The client half of the `pstorage` binary: commands for people at a
// terminal, all speaking the REST API of a running `pstorage serve`.
#pragma once

namespace pstorage::api {

// argv[0] is the command word ("volume", "snapshot", "metrics", "write",
// "read", "health"). Returns the process exit code: 0 success, 1 the server
// answered with an error (printed), 2 usage error or server unreachable.
int RunCli(int argc, char** argv);

// Whether `command` is one of RunCli's command words.
bool IsCliCommand(const char* command);

// Prints the CLI part of `pstorage --help`.
void PrintCliHelp();

}  // namespace pstorage::api
