#include "generator/compile_request.hpp"

#include "generator/template_library.hpp"
#include "runtime/hash.hpp"

namespace nsajit {

CompileRequest make_compile_request(const Variant& variant, const RenderedSource& rendered) {
  CompileRequest req;
  req.source = rendered.source;
  req.source_name = variant.name() + (variant.target.vendor == Vendor::nvidia ? ".cu" : ".hip");
  req.headers = template_headers();
  req.options = rendered.options;
  req.arch = variant.target.arch;
  req.kernel_names = rendered.kernel_names;
  return req;
}

std::string binary_key(const CompileRequest& request, const Compiler& compiler) {
  Hasher h;
  h.update(request.source)
      .update(template_hash())
      .update(compiler.name())
      .update(compiler.version())
      .update(request.arch);
  for (const auto& o : request.options) h.update(o);
  return h.hex();
}

}  // namespace nsajit
