// Shared-memory layout of the Hopper wgmma sparse_mla_fwd kernel (sm90_wgmma.cuh), as constexpr
// arithmetic shared by the device template and the generator's pruning, so both agree on the
// block size and the dynamic shared memory.
//
// Every tensor-core operand lives in the 128-byte-swizzle K-major layout: a [rows x cols] bf16
// tile is cut into column panels of 64 elements (128 bytes); panel p holds row r at
// p * rows * 128 + r * 128, and its 16-byte chunk c at ((c ^ (r & 7)) * 16). Panels start on
// 1024-byte boundaries, which the hardware swizzle requires.
#pragma once

#include "common/host_device.h"

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define NSA_WGMMA_HD __host__ __device__
#else
#define NSA_WGMMA_HD
#endif

// Byte offset of 16-byte chunk `chunk` (0..7) of row `row` inside a 128-byte-swizzle panel:
// the chunk index is XORed with the row's position inside its 8-row, 1024-byte atom, the
// pattern of wgmma descriptor swizzle mode 1 (address bits [4,7) ^= bits [7,10)).
NSA_WGMMA_HD constexpr int nsa_sw128_offset(int row, int chunk) {
  return row * 128 + ((chunk ^ (row & 7)) << 4);
}

// wgmma shared-memory matrix descriptor (PTX ISA "Matrix Descriptor Format"), 128-byte swizzle:
// bits 0-13 start address >> 4, 16-29 leading-dimension byte offset >> 4, 32-45 stride-dimension
// byte offset >> 4, 49-51 base offset (0: atoms are 1024-byte aligned), 62-63 mode (1 = 128B).
//   K-major:  LBO unused (encoded 1), SBO = 1024 (one 8-row group to the next).
//   MN-major: LBO = bytes between 64-element panels along M/N, SBO = 1024 (8 K rows to the next 8).
NSA_WGMMA_HD constexpr unsigned long long nsa_wgmma_desc_sw128(unsigned smem_byte_addr, unsigned lbo_bytes,
                                                               unsigned sbo_bytes) {
  return static_cast<unsigned long long>((smem_byte_addr & 0x3FFFFu) >> 4) |
         (static_cast<unsigned long long>((lbo_bytes & 0x3FFFFu) >> 4) << 16) |
         (static_cast<unsigned long long>((sbo_bytes & 0x3FFFFu) >> 4) << 32) | (1ull << 62);
}

// The descriptor of an address `bytes` (a multiple of 16) past the one `desc` describes: its
// start-address field is the address >> 4 in 14 bits, and a CTA's shared memory lies below 256 KB,
// so adding bytes >> 4 to the whole word never carries out of the field. One add per wgmma
// instead of rebuilding the descriptor from the address (masks, shifts and ors: ~10 uniform
// instructions each, 40 % of a math warp's instructions in the w12 kernel).
NSA_WGMMA_HD constexpr unsigned long long nsa_wgmma_desc_advance(unsigned long long desc, unsigned bytes) {
  return desc + (bytes >> 4);
}

struct NsaSparseMlaWgmmaLayout {
  int d, bh, bt, warps, stages;
  int dv;              // 512
  int threads;         // warps * 32: two math warpgroups
  int warpgroups;      // 2: warpgroup g owns output columns [256 g, 256 g + 256)
  int chunks;          // 16-byte chunks per q / kv row
  int panels;          // 64-column panels per q / kv row (d / 64)
  int q_bytes;         // [bh x d] bf16, swizzled
  int kv_stage_bytes;  // [bt x d] bf16, swizzled
  int p_bytes;         // [bh x bt] bf16, swizzled (the softmax numerators of one tile)
  int idx_bytes;       // stages x bt int32 kv row indices
  int row_bytes;       // per-head fp32 exchange between the warpgroups: alpha, m, l
  int align_slack;     // the dynamic shared memory base is rounded up to 1024 bytes
  int q_off, kv_off, p_off, idx_off, row_off;  // offsets from the aligned base
  int smem_bytes;                              // dynamic shared memory to request
  int acc_registers;  // fp32 O-accumulator registers per thread (64 x 256 per warpgroup)
  // Warp-specialised layout (warps 12: two math warpgroups + one producer), else 0:
  int p0_off, p1_off;  // P of the even / odd tile (at d 576 the even P reuses the K rope panel)
  int valid_off;       // [2][bt] int32: is kv row r of buffer b a valid index
  int bar_off;         // 8 mbarriers: ready[buffer][half], free[buffer][half]
};

// warps 12 (sm90_wgmma_ws.cuh): Q, two kv buffers (stages must be 2), the odd tile's P, at d 512
// also the even tile's P (at d 576 it lives in buffer 0's rope panel, which S has finished
// with), validity flags, per-row exchange (max, two row sums) and the mbarriers.
NSA_HOST_DEVICE constexpr NsaSparseMlaWgmmaLayout nsa_sparse_mla_wgmma_ws_layout(int d, int bh, int bt,
                                                                                 int warps, int stages) {
  NsaSparseMlaWgmmaLayout l{};
  l.d = d;
  l.bh = bh;
  l.bt = bt;
  l.warps = warps;
  l.stages = stages;
  l.dv = 512;
  l.threads = warps * 32;
  l.warpgroups = 2;
  l.chunks = d / 8;
  l.panels = d / 64;
  l.q_bytes = bh * d * 2;
  l.kv_stage_bytes = bt * d * 2;
  l.p_bytes = bh * bt * 2;
  l.idx_bytes = 2 * bt * 4;
  l.row_bytes = 5 * bh * 4;  // m [bh], l [2][bh], the true row maxima [2][bh] (lazy max)
  l.align_slack = 1024;
  l.q_off = 0;
  l.kv_off = l.q_bytes;
  l.p1_off = l.kv_off + 2 * l.kv_stage_bytes;
  l.p0_off = d > l.dv ? l.kv_off + (l.dv / 64) * bt * 128 : l.p1_off + l.p_bytes;
  l.p_off = l.p1_off;
  l.valid_off = (d > l.dv ? l.p1_off : l.p0_off) + l.p_bytes;
  l.idx_off = l.valid_off;
  l.row_off = l.valid_off + l.idx_bytes;
  l.bar_off = l.row_off + l.row_bytes;
  l.smem_bytes = l.bar_off + 8 * 8 + l.align_slack;
  l.acc_registers = bh * l.dv / 2 / 128;
  return l;
}

NSA_HOST_DEVICE constexpr NsaSparseMlaWgmmaLayout nsa_sparse_mla_wgmma_layout(int d, int bh, int bt,
                                                                              int warps, int stages) {
  if (warps == 12) return nsa_sparse_mla_wgmma_ws_layout(d, bh, bt, warps, stages);
  NsaSparseMlaWgmmaLayout l{};
  l.d = d;
  l.bh = bh;
  l.bt = bt;
  l.warps = warps;
  l.stages = stages;
  l.dv = 512;
  l.threads = warps * 32;
  l.warpgroups = warps / 4;
  l.chunks = d / 8;
  l.panels = d / 64;
  l.q_bytes = bh * d * 2;
  l.kv_stage_bytes = bt * d * 2;
  l.p_bytes = bh * bt * 2;
  l.idx_bytes = stages * bt * 4;
  l.row_bytes = 3 * bh * 4;
  l.align_slack = 1024;
  l.q_off = 0;
  l.kv_off = l.q_off + l.q_bytes;
  l.p_off = l.kv_off + stages * l.kv_stage_bytes;
  l.idx_off = l.p_off + l.p_bytes;
  l.row_off = l.idx_off + l.idx_bytes;
  l.smem_bytes = l.row_off + l.row_bytes + l.align_slack;
  l.acc_registers = l.warpgroups > 0 ? bh * l.dv / l.warpgroups / 128 : 0;
  return l;
}

// Transposed-product kernel (sm90_wgmma_t.cuh, h_q <= 32): S^T = K Q^T and O^T += V^T P^T with the
// kv tile as the wgmma A operand (m64 = 64 tokens, n = bh heads). warps 8: one math warpgroup +
// one producer warpgroup; warps 12: two math warpgroups (alternate tiles) + one producer.
struct NsaSparseMlaWgmmaTLayout {
  int d, bh, bt, warps, stages;
  int sx;                    // softmax schedule: 1 column max exchanged every tile, 2 lazy (voted)
  int p_bufs;                // P buffers per math warpgroup: sx 2 double-buffers P (no barrier before
                             // the stores of the next tile)
  int dv;                    // 512
  int threads;               // warps * 32
  int math_wgs;              // math warpgroups: warps / 4 - 1
  int chunks;                // 16-byte chunks per q / kv row
  int panels;                // 64-column panels per q / kv row (d / 64)
  int q_bytes;               // [bh x d] bf16, swizzled K-major (the wgmma B operand of S^T)
  int kv_stage_bytes;        // [bt x d] bf16, swizzled K-major (A of S^T; A transposed of O^T)
  int p_bytes;               // [bh x bt] bf16, one swizzle panel: P^T as the K-major B operand of O^T
  int q_off, kv_off, p_off;  // p_off: math_wgs P buffers
  int valid_off;             // [stages][bt] int32: is kv row r of a stage a valid index
  int red_off;               // [2][math_wgs][4][bh] fp32: per-warp column maxima (double-buffered)
  int fin_off;               // [math_wgs][4][bh] fp32 row sums + [math_wgs][bh] maxima at the end
                             // (sx 2: + [math_wgs][4][bh] per-warp true maxima)
  int bar_off;               // stages x 4 mbarriers: ready[st][half], then free[st][half]
  int smem_bytes;            // dynamic shared memory to request (with 1024 bytes of alignment slack)
  int acc_registers;         // fp32 O^T accumulator registers per math thread: 512 x bh / 128
  int merge_bytes;           // warps 12: the second warpgroup's O^T handed over in the kv region
  // pr 1 (panel ring): the kv region is a ring of `slots` 64-row panels (bt x 64 bf16, 8 KB
  // each) with a ready and a free mbarrier per slot instead of `stages` whole tiles in two halves;
  // panel j of tile t goes to slot (t * panels + j) % slots. slots = stages * panels +
  // ring_extra, ring_extra the most panels that still fit (1 CTA per SM; stages 1: 2 CTAs per
  // SM), at most panels - 1. Without the ring: slots = stages * panels and panel j of tile t
  // sits in slot (t % stages) * panels + j (the same addresses as the stage layout).
  int pr;           // 0: stages in halves; 1: panel ring
  int panel_bytes;  // bt * 128
  int slots;        // kv panel slots
  int ring_extra;   // pr 1: slots beyond stages * panels (0 without the ring)
  int flag_bufs;    // [flag_bufs][bt] validity flags, tile t in buffer t % flag_bufs: stages, or
                    // with the ring ceil(slots / panels) (the producer's lead over the oldest
                    // tile whose flags are still unread)
  int barriers;     // mbarriers: 4 stages (ready + free per half), or 2 slots (ready + free per slot)
};

// Hopper's shared memory: the opt-in maximum per block and the total per SM, of which 1 KB is
// reserved per resident CTA.
constexpr int kNsaSm90SharedPerBlock = 227 * 1024;
constexpr int kNsaSm90SharedPerSm = 228 * 1024;

// The layout with `extra` ring slots (extra < 0: no ring, the stage layout).
NSA_HOST_DEVICE constexpr NsaSparseMlaWgmmaTLayout nsa_sparse_mla_wgmma_t_layout_slots(int d, int bh, int bt,
                                                                                       int warps, int stages,
                                                                                       int sx, int extra) {
  NsaSparseMlaWgmmaTLayout l{};
  l.sx = sx;
  l.p_bufs = sx == 2 ? 2 : 1;
  l.d = d;
  l.bh = bh;
  l.bt = bt;
  l.warps = warps;
  l.stages = stages;
  l.dv = 512;
  l.threads = warps * 32;
  l.math_wgs = warps / 4 - 1;
  l.chunks = d / 8;
  l.panels = d / 64;
  l.q_bytes = bh * d * 2;
  l.kv_stage_bytes = bt * d * 2;
  l.p_bytes = bh * bt * 2;
  l.pr = extra >= 0 ? 1 : 0;
  l.panel_bytes = bt * 128;
  l.ring_extra = extra >= 0 ? extra : 0;
  l.slots = stages * l.panels + l.ring_extra;
  l.flag_bufs = l.pr ? (l.slots + l.panels - 1) / l.panels : stages;
  l.barriers = l.pr ? 2 * l.slots : 4 * stages;
  l.q_off = 0;
  l.kv_off = (l.q_bytes + 1023) / 1024 * 1024;
  l.p_off = l.kv_off + l.slots * l.panel_bytes;
  l.valid_off = l.p_off + (l.math_wgs > 0 ? l.math_wgs : 0) * l.p_bufs * ((l.p_bytes + 1023) / 1024 * 1024);
  l.red_off = l.valid_off + l.flag_bufs * bt * 4;
  l.fin_off = l.red_off + 2 * (l.math_wgs > 0 ? l.math_wgs : 0) * 4 * bh * 4;
  l.bar_off = l.fin_off + (l.math_wgs > 0 ? l.math_wgs : 0) * (sx == 2 ? 9 : 5) * bh * 4;
  l.smem_bytes = l.bar_off + l.barriers * 8 + 1024;
  l.acc_registers = l.dv * bh / 128;
  l.merge_bytes = l.math_wgs > 1 ? l.dv * bh * 4 : 0;
  return l;
}

// Does a layout fit Hopper: one CTA per SM, or two with one kv stage (st1 overlaps two CTAs).
NSA_HOST_DEVICE constexpr bool nsa_sparse_mla_wgmma_t_fits(const NsaSparseMlaWgmmaTLayout& l) {
  if (l.smem_bytes > kNsaSm90SharedPerBlock) return false;
  return l.stages != 1 || 2 * (l.smem_bytes + 1024) <= kNsaSm90SharedPerSm;
}

// pr 0: the stage layout; pr 1: the panel ring with as many extra slots as fit (at most panels
// - 1; 0 when none fits, which the generator prunes).
NSA_HOST_DEVICE constexpr NsaSparseMlaWgmmaTLayout nsa_sparse_mla_wgmma_t_layout(int d, int bh, int bt,
                                                                                 int warps, int stages,
                                                                                 int sx = 1, int pr = 0) {
  if (pr == 0) return nsa_sparse_mla_wgmma_t_layout_slots(d, bh, bt, warps, stages, sx, -1);
  int extra = 0;
  while (extra + 1 < d / 64 && nsa_sparse_mla_wgmma_t_fits(nsa_sparse_mla_wgmma_t_layout_slots(
                                   d, bh, bt, warps, stages, sx, extra + 1)))
    ++extra;
  return nsa_sparse_mla_wgmma_t_layout_slots(d, bh, bt, warps, stages, sx, extra);
}
