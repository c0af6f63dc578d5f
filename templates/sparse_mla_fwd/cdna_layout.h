// Tile layout of the AMD CDNA sparse_mla_fwd kernel (templates/sparse_mla_fwd/cdna.h), as
// constexpr arithmetic shared by the device template and the generator's pruning rules, so the
// two never disagree about LDS bytes, wave roles or register estimates. Builtin types only:
// compiled by the host compiler, hipRTC and clang-19.
//
// The kv tile (BT gathered rows x d) does not fit 64 KB of LDS for BT >= 64 (64 x 1152 B), so it
// is streamed through LDS in chunks of CW = 128 columns: first the d_qk chunks for S = Q K^T,
// then, after the softmax, the 512 value columns again (from L2) for O += P V.
#pragma once

struct NsaSparseMlaCdnaLayout {
  int d, bh, bt, waves, stages;
  int dv, threads;
  int cw;                  // chunk width in d (bf16 columns), one LDS buffer = bt x cw
  int s_chunks, v_chunks;  // chunks per tile for S (the last may be 64 wide: rope) and for P V
  int steps;               // s_chunks + v_chunks
  int ht, ct;              // 16-row head tiles, 16-column kv tiles
  // S = Q K^T: waves form sm (head tiles) x sn (kv tiles) x sk (split of d inside a chunk).
  int sm, sn, sk, hts, cts, jmax;
  // O += P V: waves form pm (head tiles) x pn (value columns); each wave owns cww columns of
  // every chunk, in groups of 32 (two MFMAs of 16 columns: even and odd dv).
  int pm, pn, hto, cww, ng;
  // Softmax: tpr threads per head row, cpt columns each.
  int tpr, cpt;
  int loads;     // 16-byte global loads per thread per chunk
  int sp_pitch;  // floats per S row (bt + 4: conflict-free writes); P (bf16) uses bt + 4 too
  int kv_bytes, sp_bytes, idx_bytes, stat_bytes, lds_bytes;
  int q_regs, s_regs, o_regs, stage_regs;  // 32-bit registers per lane
};

constexpr int nsa_cdna_min(int a, int b) {
  return a < b ? a : b;
}

constexpr NsaSparseMlaCdnaLayout nsa_sparse_mla_cdna_layout(int d, int bh, int bt, int waves, int stages) {
  NsaSparseMlaCdnaLayout l{};
  l.d = d;
  l.bh = bh;
  l.bt = bt;
  l.waves = waves;
  l.stages = stages;
  l.dv = 512;
  l.threads = waves * 64;
  l.cw = 128;
  l.s_chunks = (d + l.cw - 1) / l.cw;
  l.v_chunks = l.dv / l.cw;
  l.steps = l.s_chunks + l.v_chunks;
  l.ht = bh / 16;
  l.ct = bt / 16;
  l.sm = nsa_cdna_min(l.ht, waves);
  l.sn = nsa_cdna_min(l.ct, waves / l.sm);
  l.sk = waves / (l.sm * l.sn);
  l.hts = l.ht / l.sm;
  l.cts = l.ct / l.sn;
  l.jmax = (l.cw / 32 + l.sk - 1) / l.sk;
  l.pn = nsa_cdna_min(waves, l.cw / 32);
  l.pm = waves / l.pn;
  l.hto = l.pm > 0 ? l.ht / l.pm : 0;
  l.cww = l.cw / l.pn;
  l.ng = l.cww / 32;
  l.tpr = l.threads / bh;
  l.cpt = l.tpr > 0 ? bt / l.tpr : 0;
  l.loads = bt * (l.cw / 8) / l.threads;
  l.sp_pitch = bt + 4;
  l.kv_bytes = stages * bt * l.cw * 2;
  l.sp_bytes = l.sk * bh * l.sp_pitch * 4;
  l.idx_bytes = 2 * bt * 4;
  l.stat_bytes = 2 * bh * 4;
  l.lds_bytes = l.kv_bytes + l.sp_bytes + l.idx_bytes + l.stat_bytes;
  l.q_regs = l.hts * ((d / 32 + l.sk - 1) / l.sk) * 4;
  l.s_regs = l.hts * l.cts * 4;
  l.o_regs = bh * l.dv / l.threads;
  l.stage_regs = l.loads * 4;
  return l;
}

// Empty when the shape is buildable; otherwise the rule it breaks (used by the generator's
// pruning and by static_asserts in the template).
constexpr const char* nsa_sparse_mla_cdna_shape_error(const NsaSparseMlaCdnaLayout& l) {
  if (l.bh % 16 != 0 || l.bt % 16 != 0) return "bh and bt must be multiples of 16 (16x16x16 MFMA tiles)";
  if (l.sm * l.sn * l.sk != l.waves || l.ht % l.sm != 0 || l.ct % l.sn != 0)
    return "waves do not divide the S tile into 16x16 MFMA blocks";
  if (l.sk > l.cw / 32)
    return "too many waves for the S tile: the d split exceeds the 32-column pairs of a chunk";
  if (l.pm == 0 || l.ht % l.pm != 0)
    return "waves do not divide the O tile: 16-head MFMA tiles x 32-column value groups per wave";
  if (l.cpt < 2 || l.cpt % 2 != 0) return "softmax needs an even number (>= 2) of columns per thread";
  if (l.loads < 1 || l.bt * (l.cw / 8) % l.threads != 0)
    return "the chunk does not split into whole 16-byte loads per thread";
  return "";
}
