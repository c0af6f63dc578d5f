// Tile layout of the NVIDIA sparse_mla_fwd kernel, as constexpr arithmetic shared by the
// device template (compile-time) and the generator's pruning rules (run time), so the two
// can never disagree about shared memory or registers.
#pragma once

#include "common/host_device.h"

struct NsaSparseMlaLayout {
  int d, bh, bt, warps, stages;
  int dv;  // 512
  int threads;
  int wm, wn;     // warp grid: wm warps along heads, wn along columns (tokens for S, dims for O)
  int rm, mt;     // head rows per warp, and 16-row mma tiles per warp
  int cn, nt_s;   // S columns per warp, and 8-column mma tiles of S per warp
  int on, nt_o;   // O columns per warp, and 8-column mma tiles of O per warp
  int qk_stride;  // kv smem row pitch in elements (+8: conflict-free ldmatrix)
  int q_stride;   // Q smem row pitch in elements (unpadded when Q is read once into registers)
  int p_stride;
  int chunks;  // 16-byte chunks per kv/q row
  // S = Q K^T is split along d across the wn warps of a head group (ks slices of kq k-steps,
  // cs column groups of sc columns): each warp keeps its Q slice in registers for the whole
  // kernel and runs mt*nt_p independent mma chains; the ks partial S sum through shared memory.
  int ks, cs, kq, sc, nt_p;
  int q_regs;     // 1: Q fragments live in registers (the Q smem region is reused for partial S)
  int rs_stride;  // partial-S row pitch in floats (+8: two wavefronts per float2 warp access)
  // gather 0: every thread issues 16-byte cp.async (wait_group, a barrier at each tile's top);
  // gather 1: one thread per kv row issues one cp.async.bulk of the whole row, completing on the
  // stage's mbarrier, and the next tile is issued after the partial-S barrier, so a tile needs
  // no barrier of its own at the top. The mbarriers (8 bytes per stage) live in the row-sum
  // half of the reduction region, which is used only after the loop: same smem_bytes as gather 0.
  int gather;
  int q_bytes, kv_stage_bytes, p_bytes, idx_bytes, red_bytes, rs_bytes, smem_bytes;
  int q_off, kv_off, p_off, idx_off, red_off, rs_off, bar_off;  // byte offsets of the shared-memory regions
  int acc_registers;                                            // fp32 O-accumulator registers per thread
};

NSA_HOST_DEVICE constexpr NsaSparseMlaLayout nsa_sparse_mla_layout(int d, int bh, int bt, int warps,
                                                                   int stages, int gather = 0) {
  NsaSparseMlaLayout l{};
  l.gather = gather;
  l.d = d;
  l.bh = bh;
  l.bt = bt;
  l.warps = warps;
  l.stages = stages;
  l.dv = 512;
  l.threads = warps * 32;
  // Warps along heads: as few as possible (each head group re-reads every K and V row from
  // shared memory), two 16-row tiles per warp where the O accumulator leaves room (<= 64 fp32
  // registers per thread), but at least 8 S columns per warp.
  const int head_tiles = bh / 16, o_regs = bh * 16 / warps;
  l.wm = o_regs <= 64 ? (head_tiles + 1) / 2 : head_tiles;
  if (l.wm > warps) l.wm = warps;
  while (l.wm < warps && l.wm < head_tiles && bt / (warps / l.wm) < 8) l.wm *= 2;
  l.wn = warps / l.wm;
  l.rm = bh / l.wm;
  l.mt = l.rm / 16;
  l.cn = bt / l.wn;
  l.nt_s = l.cn / 8;
  l.on = l.dv / l.wn;
  l.nt_o = l.on / 8;
  l.qk_stride = d + 8;
  l.p_stride = bt + 8;
  l.chunks = d / 8;

  l.kv_stage_bytes = bt * l.qk_stride * 2;
  l.p_bytes = bh * l.p_stride * 2;
  l.idx_bytes = stages * bt * 4;
  l.red_bytes = 2 * l.wn * bh * 4;
  l.acc_registers = l.mt * l.nt_o * 4;
  l.ks = l.wn < 4 ? l.wn : 4;
  l.cs = l.wn / l.ks;
  l.kq = d / 16 / l.ks;
  l.sc = bt / l.cs;
  l.nt_p = l.sc / 8;
  l.q_regs = l.acc_registers + l.mt * l.kq * 4 + l.mt * l.nt_p * 4 <= 168 ? 1 : 0;
  l.q_stride = l.q_regs ? d : l.qk_stride;  // read once into registers: no padding needed
  l.q_bytes = bh * l.q_stride * 2;
  l.rs_stride = bt + 8;
  l.rs_bytes = l.ks > 1 ? l.ks * bh * l.rs_stride * 4 : 0;
  const int region0 = l.q_regs ? (l.q_bytes > l.rs_bytes ? l.q_bytes : l.rs_bytes) : l.q_bytes;
  l.q_off = 0;
  l.kv_off = region0;
  l.p_off = l.kv_off + stages * l.kv_stage_bytes;
  l.idx_off = l.p_off + l.p_bytes;
  l.red_off = l.idx_off + l.idx_bytes;
  l.rs_off = l.q_regs ? 0 : l.red_off + l.red_bytes;
  l.smem_bytes = l.red_off + l.red_bytes + (l.q_regs ? 0 : l.rs_bytes);
  l.bar_off = l.red_off + l.red_bytes / 2;  // 8-aligned: every region above is a multiple of 8 bytes
  return l;
}
