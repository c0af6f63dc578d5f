// The wgmma building blocks of sm90_wgmma.cuh, one at a time, against the CPU: the swizzled
// copy + K-major descriptors + accumulator layout (S = Q K^T, one m64n64 warpgroup tile over
// d 576), and the N-major (transposed) V descriptor (O = P V, m64n256 per warpgroup, two
// warpgroups), and the same O with P taken from registers laid out as an S accumulator (the RS
// form of sm90_wgmma_ws.cuh). When the sparse_mla sweep fails for the mma1 variants, this says
// which part.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <random>
#include <vector>

#include "generator/template_library.hpp"
#include "tests/gpu/gpu_fixture.hpp"
#include "tests/reference/bf16_host.hpp"

namespace nsajit {
namespace {

using reference::bf16_to_float;
using reference::float_to_bf16;

constexpr const char* kProbeSource = R"(
#include "common/nv_ptx.cuh"
#include "common/nv_wgmma.cuh"
#include "sparse_mla_fwd/wgmma_layout.h"
using namespace nsajit;

// [rows x 576] bf16, row-major in global -> 64-column swizzled panels in shared memory.
__device__ void load_swizzled(unsigned char* dst, const unsigned short* src, int rows, int cols) {
  const int chunks = cols / 8;
  for (int c = threadIdx.x; c < rows * chunks; c += blockDim.x) {
    const int r = c / chunks, k = c % chunks;
    cp_async_16(dst + (k >> 3) * rows * 128 + nsa_sw128_offset(r, k & 7), src + r * cols + k * 8, 16);
  }
}

__device__ unsigned char* aligned_base(unsigned char* raw, unsigned& addr) {
  const unsigned a = smem_addr(raw), pad = (1024u - (a & 1023u)) & 1023u;
  addr = a + pad;
  return raw + pad;
}

// S[64 x 64] = Q[64 x 576] K[64 x 576]^T, one warpgroup (128 threads).
extern "C" __global__ void __launch_bounds__(128, 1) wgmma_qk_probe(const unsigned short* q, const unsigned short* k, float* s) {
  extern __shared__ __align__(1024) unsigned char raw[];
  unsigned addr;
  unsigned char* base = aligned_base(raw, addr);
  load_swizzled(base, q, 64, 576);
  load_swizzled(base + 64 * 576 * 2, k, 64, 576);
  cp_async_commit();
  cp_async_wait<0>();
  fence_proxy_async_smem();
  __syncthreads();
  float acc[32];
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 36; ++kk) {
    const unsigned off = (kk >> 2) * 64 * 128 + (kk & 3) * 32;
    wgmma_m64n64k16_ss(acc, nsa_wgmma_desc_sw128(addr + off, 16, 1024),
                       nsa_wgmma_desc_sw128(addr + 64 * 576 * 2 + off, 16, 1024), kk > 0 ? 1 : 0);
  }
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(acc);
  const int lane = threadIdx.x & 31, r0 = (threadIdx.x >> 5) * 16 + (lane >> 2), c0 = 2 * (lane & 3);
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int e = 0; e < 2; ++e) s[(r0 + 8 * h) * 64 + 8 * j + c0 + e] = acc[4 * j + 2 * h + e];
}

// O[64 x 512] = P[64 x 64] V[64 x 512], V = the first 512 columns of kv [64 x 576]; two
// warpgroups (256 threads), warpgroup g owning columns [256 g, 256 g + 256).
extern "C" __global__ void __launch_bounds__(256, 1) wgmma_pv_probe(const unsigned short* p, const unsigned short* kv, float* o) {
  extern __shared__ __align__(1024) unsigned char raw[];
  unsigned addr;
  unsigned char* base = aligned_base(raw, addr);
  load_swizzled(base, kv, 64, 576);
  load_swizzled(base + 64 * 576 * 2, p, 64, 64);
  cp_async_commit();
  cp_async_wait<0>();
  fence_proxy_async_smem();
  __syncthreads();
  const int wg = threadIdx.x >> 7;
  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.f;
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
    wgmma_m64n256k16_ss_tb(acc, nsa_wgmma_desc_sw128(addr + 64 * 576 * 2 + kk * 32, 16, 1024),
                           nsa_wgmma_desc_sw128(addr + wg * 4 * 64 * 128 + kk * 16 * 128, 64 * 128, 1024), 1);
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(acc);
  const int lane = threadIdx.x & 31, r0 = ((threadIdx.x >> 5) & 3) * 16 + (lane >> 2), c0 = 2 * (lane & 3);
#pragma unroll
  for (int j = 0; j < 32; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int e = 0; e < 2; ++e) o[(r0 + 8 * h) * 512 + wg * 256 + 8 * j + c0 + e] = acc[4 * j + 2 * h + e];
}

// The same O, but P enters as the A operand from registers: each thread holds P where an
// m64n64 S accumulator would (rows r0, r0 + 8; columns 8 j + c0, + 1), and k-step kk takes
// accumulator registers 8 kk .. 8 kk + 7 packed in pairs, as sm90_wgmma_ws.cuh does.
extern "C" __global__ void __launch_bounds__(256, 1) wgmma_pv_rs_probe(const unsigned short* p, const unsigned short* kv, float* o) {
  extern __shared__ __align__(1024) unsigned char raw[];
  unsigned addr;
  unsigned char* base = aligned_base(raw, addr);
  load_swizzled(base, kv, 64, 576);
  cp_async_commit();
  cp_async_wait<0>();
  fence_proxy_async_smem();
  __syncthreads();
  const int wg = threadIdx.x >> 7;
  const int lane = threadIdx.x & 31, r0 = ((threadIdx.x >> 5) & 3) * 16 + (lane >> 2), c0 = 2 * (lane & 3);
  float sacc[32];
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int e = 0; e < 2; ++e) sacc[4 * j + 2 * h + e] = __uint_as_float(unsigned(p[(r0 + 8 * h) * 64 + 8 * j + c0 + e]) << 16);
  unsigned a[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
#pragma unroll
    for (int i = 0; i < 4; ++i) a[kk][i] = pack_bf16x2(sacc[8 * kk + 2 * i], sacc[8 * kk + 2 * i + 1]);
  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.f;
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
    wgmma_m64n256k16_rs_tb(acc, a[kk], nsa_wgmma_desc_sw128(addr + wg * 4 * 64 * 128 + kk * 16 * 128, 64 * 128, 1024), 1);
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(acc);
  wgmma_fence_operands(a);
#pragma unroll
  for (int j = 0; j < 32; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int e = 0; e < 2; ++e) o[(r0 + 8 * h) * 512 + wg * 256 + 8 * j + c0 + e] = acc[4 * j + 2 * h + e];
}
)";

std::vector<std::uint16_t> random_bf16(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) x = float_to_bf16(u(rng));
  return v;
}

// Worst |got - ref| / (sum |a_i b_i| + 1e-6) over an [m x n] product of bf16 inputs.
struct ProductCheck {
  double worst = 0;
  int first_bad = -1;
};

ProductCheck compare(const std::vector<float>& got, int m, int n, int k, auto a_at, auto b_at) {
  ProductCheck c;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (int t = 0; t < k; ++t) {
        const double prod = static_cast<double>(a_at(i, t)) * b_at(t, j);
        ref += prod;
        mag += std::fabs(prod);
      }
      const double err = std::fabs(got[i * n + j] - ref) / (mag + 1e-6);
      if (!(err <= 1e-4) && c.first_bad < 0) c.first_bad = i * n + j;
      if (!(err <= c.worst)) c.worst = std::isnan(err) ? INFINITY : err;
    }
  return c;
}

}  // namespace

TEST_CASE("wgmma_primitives_match_the_cpu_qk_and_transposed_pv") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) {
    MESSAGE("SKIPPED: the wgmma probes need an NVIDIA GPU");
    return;
  }
  const Compiler* compiler = test::gpu_backend().compiler_for(device.info().arch);
  REQUIRE_MESSAGE(compiler != nullptr, test::gpu_backend().compiler_unavailable_reason());
  CompileRequest req;
  req.source = kProbeSource;
  req.source_name = "wgmma_probes.cu";
  req.headers = template_headers();
  req.arch = device.info().arch;
  req.kernel_names = {"wgmma_qk_probe", "wgmma_pv_probe", "wgmma_pv_rs_probe"};
  const CompileResult built = compiler->compile(req);
  auto module = device.load_module(built.binary);
  const KernelHandle qk = module->kernel("wgmma_qk_probe");
  const KernelHandle pv = module->kernel("wgmma_pv_probe");
  const KernelHandle pv_rs = module->kernel("wgmma_pv_rs_probe");
  const int smem = 2 * 64 * 576 * 2 + 1024;  // two [64 x 576] tiles + alignment slack
  device.set_max_dynamic_shared(qk, smem);
  device.set_max_dynamic_shared(pv, smem);
  device.set_max_dynamic_shared(pv_rs, smem);

  std::mt19937 rng(std::random_device{}());
  const auto q = random_bf16(64 * 576, rng), k = random_bf16(64 * 576, rng), p = random_bf16(64 * 64, rng);
  DeviceMemory dq = device.allocate(q.size() * 2), dk = device.allocate(k.size() * 2),
               dp = device.allocate(p.size() * 2);
  DeviceMemory ds = device.allocate(64 * 64 * 4), dout = device.allocate(64 * 512 * 4),
               dout_rs = device.allocate(64 * 512 * 4);
  device.copy_to_device(dq.get(), q.data(), q.size() * 2);
  device.copy_to_device(dk.get(), k.data(), k.size() * 2);
  device.copy_to_device(dp.get(), p.data(), p.size() * 2);
  device.fill_bytes(ds.get(), 0xff, 64 * 64 * 4);  // NaN poison: every element must be written
  device.fill_bytes(dout.get(), 0xff, 64 * 512 * 4);
  device.fill_bytes(dout_rs.get(), 0xff, 64 * 512 * 4);

  {
    void* a = dq.get();
    void* b = dk.get();
    void* c = ds.get();
    void* args[] = {&a, &b, &c};
    device.launch(qk, Dim3{1, 1, 1}, Dim3{128, 1, 1}, smem, nullptr, args);
  }
  {
    void* a = dp.get();
    void* b = dk.get();  // kv tile = k; V = its first 512 columns
    void* c = dout.get();
    void* args[] = {&a, &b, &c};
    device.launch(pv, Dim3{1, 1, 1}, Dim3{256, 1, 1}, smem, nullptr, args);
  }
  {
    void* a = dp.get();
    void* b = dk.get();
    void* c = dout_rs.get();
    void* args[] = {&a, &b, &c};
    device.launch(pv_rs, Dim3{1, 1, 1}, Dim3{256, 1, 1}, smem, nullptr, args);
  }
  device.synchronize();
  std::vector<float> s(64 * 64), o(64 * 512), o_rs(64 * 512);
  device.copy_to_host(o_rs.data(), dout_rs.get(), o_rs.size() * 4);
  device.copy_to_host(s.data(), ds.get(), s.size() * 4);
  device.copy_to_host(o.data(), dout.get(), o.size() * 4);

  const auto sc = compare(
      s, 64, 64, 576, [&](int i, int t) { return bf16_to_float(q[i * 576 + t]); },
      [&](int t, int j) { return bf16_to_float(k[j * 576 + t]); });
  CHECK_MESSAGE(sc.first_bad < 0, fmt::format("S = Q K^T: worst rel err {:.3e}, first bad (row {}, col {})",
                                              sc.worst, sc.first_bad / 64, sc.first_bad % 64));
  const auto oc = compare(
      o, 64, 512, 64, [&](int i, int t) { return bf16_to_float(p[i * 64 + t]); },
      [&](int t, int j) { return bf16_to_float(k[t * 576 + j]); });
  CHECK_MESSAGE(oc.first_bad < 0, fmt::format("O = P V: worst rel err {:.3e}, first bad (row {}, col {})",
                                              oc.worst, oc.first_bad / 512, oc.first_bad % 512));
  const auto rc = compare(
      o_rs, 64, 512, 64, [&](int i, int t) { return bf16_to_float(p[i * 64 + t]); },
      [&](int t, int j) { return bf16_to_float(k[t * 576 + j]); });
  CHECK_MESSAGE(
      rc.first_bad < 0,
      fmt::format("O = P V, P from registers (RS): worst rel err {:.3e}, first bad (row {}, col {})",
                  rc.worst, rc.first_bad / 512, rc.first_bad % 512));
}

}  // namespace nsajit
