// Progress for long work: a redrawn bar with ETA on a terminal, plain lines otherwise.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace nsajit::cli {

class Progress {
 public:
  explicit Progress(std::FILE* out = stderr);
  // Starts a phase of `total` steps ("compile", "verify", "time h_q 16").
  void begin(const std::string& phase, std::size_t total);
  void step(const std::string& label);
  void note(const std::string& line);  // a line that stays (results, warnings)
  void end();

 private:
  void draw();
  std::FILE* out_;
  bool tty_;
  std::string phase_, label_;
  std::size_t total_ = 0, done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace nsajit::cli
