#include "generator/template_library.hpp"

#include "runtime/hash.hpp"

namespace nsajit {

const std::map<std::string, std::string>& template_headers() {
  static const std::map<std::string, std::string> headers = [] {
    std::map<std::string, std::string> m;
    for (const auto& f : embedded_templates()) m.emplace(f.include_name, f.content);
    return m;
  }();
  return headers;
}

const std::string& template_hash() {
  static const std::string hash = [] {
    Hasher h;
    for (const auto& [name, content] : template_headers()) {
      h.update(name);
      h.update(content);
    }
    return h.hex();
  }();
  return hash;
}

}  // namespace nsajit
