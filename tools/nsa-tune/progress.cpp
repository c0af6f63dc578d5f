#include "tools/nsa-tune/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

namespace nsajit::cli {

Progress::Progress(std::FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

void Progress::begin(const std::string& phase, std::size_t total) {
  end();
  phase_ = phase;
  total_ = total;
  done_ = 0;
  label_.clear();
  start_ = std::chrono::steady_clock::now();
  if (!tty_)
    fmt::print(out_, "{}: {} step(s)\n", phase_, total_);
  else
    draw();
}

void Progress::step(const std::string& label) {
  ++done_;
  label_ = label;
  if (tty_) {
    draw();
  } else {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    fmt::print(out_, "  {} [{}/{}] {} ({:.1f} s)\n", phase_, done_, total_, label, el);
  }
  std::fflush(out_);
}

void Progress::note(const std::string& line) {
  if (tty_ && total_ > 0) fmt::print(out_, "\r\033[K");
  fmt::print(out_, "{}\n", line);
  if (tty_ && total_ > 0) draw();
}

void Progress::end() {
  if (tty_ && total_ > 0) fmt::print(out_, "\n");
  total_ = 0;
}

void Progress::draw() {
  constexpr int kWidth = 30;
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 0.0;
  const int fill = static_cast<int>(frac * kWidth);
  const std::string eta =
      done_ > 0
          ? fmt::format("ETA {:.0f} s", el / static_cast<double>(done_) * static_cast<double>(total_ - done_))
          : "ETA --";
  fmt::print(out_, "\r\033[K{} [{}{}] {}/{} {} {}", phase_, std::string(fill, '#'),
             std::string(kWidth - fill, '.'), done_, total_, eta, label_.substr(0, 40));
  std::fflush(out_);
}

}  // namespace nsajit::cli
