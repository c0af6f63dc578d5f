// Shared by the GPU suites: the first usable device, opened once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.hpp"

namespace nsajit::test {

// True when some backend has a GPU; otherwise `reason` says what is missing.
bool gpu_available(std::string& reason);

// The backend and device the GPU suites run on (first backend with a GPU, ordinal 0).
Backend& gpu_backend();
Device& gpu_device();

// The comma-separated items of environment variable `name` (empty when unset or empty): the
// timing reports' variant and shape lists.
std::vector<std::string> env_list(const char* name);

}  // namespace nsajit::test
