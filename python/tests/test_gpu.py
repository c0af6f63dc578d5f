"""GPU tests of the Python package against torch float64 references (DESIGN.md §1-2).

Run on a CUDA machine with torch and the real libnsajit.so:
    NSA_JIT_LIBRARY=$PWD/build/libnsajit.so NSA_JIT_REQUIRE_GPU=1 python -m pytest -v python/tests/test_gpu.py
Skipped, with the reason shown, when torch, a GPU or the library is missing; with
NSA_JIT_REQUIRE_GPU=1 that is a failure instead, so a device run cannot pass by skipping.
Every input is fresh random data (the seed is in each failure message); outputs given with
out= are poisoned with NaN first, so an element the kernel forgot to write fails.
"""

import ctypes
import math
import os

import pytest

import nsa_jit
from nsa_jit import _lib, api

torch = pytest.importorskip("torch") if os.environ.get("NSA_JIT_REQUIRE_GPU") != "1" else __import__("torch")

LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)
D_V = 512
OUT_REL_TOL = 1e-2
STAT_ABS_TOL = 1e-3


def _why_not_runnable():
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    try:
        nsa_jit.library_version()
    except nsa_jit.NsaJitUnavailableError as error:
        return str(error)
    return None


@pytest.fixture(scope="module", autouse=True)
def gpu():
    """The device to test on; skips (or fails under NSA_JIT_REQUIRE_GPU=1) with the reason."""
    _lib.reset_for_tests()  # a CPU test may have loaded the fake library in this process
    api._reset_contexts_for_tests()
    reason = _why_not_runnable()
    if reason is not None:
        if os.environ.get("NSA_JIT_REQUIRE_GPU") == "1":
            pytest.fail(f"NSA_JIT_REQUIRE_GPU=1 but GPU tests cannot run: {reason}")
        pytest.skip(f"GPU tests skipped: {reason}")
    device = torch.device("cuda", torch.cuda.current_device())
    print(f"\nnsa-jit {nsa_jit.library_version()} from {nsa_jit.library_path()} on {torch.cuda.get_device_name(device)}")
    return device


class Rng:
    """A seeded CUDA generator; the seed goes into every failure message."""

    def __init__(self, device, seed):
        self.device, self.seed = device, seed
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)


@pytest.fixture
def rng(gpu):
    return Rng(gpu, int.from_bytes(os.urandom(4), "little"))


# ---- inputs ---------------------------------------------------------------------------------


def randn(shape, rng, dtype=None, scale=1.0):
    dtype = torch.bfloat16 if dtype is None else dtype
    return (torch.randn(shape, generator=rng.generator, device=rng.device, dtype=torch.float32) * scale).to(dtype)


def random_indices(lead, topk, s_kv, rng, invalid=True):
    """[..., 1, topk] int32: distinct positions per row; ~5% -1 and ~5% >= s_kv when invalid."""
    rows = math.prod(lead)
    keys = torch.rand((rows, s_kv), generator=rng.generator, device=rng.device)
    indices = keys.argsort(dim=1)[:, :topk].to(torch.int32)
    if invalid:
        draw = torch.rand((rows, topk), generator=rng.generator, device=rng.device)
        beyond = s_kv + torch.randint(0, 1000, (rows, topk), generator=rng.generator, device=rng.device, dtype=torch.int32)
        indices = torch.where(draw < 0.05, torch.full_like(indices, -1), indices)
        indices = torch.where((draw >= 0.05) & (draw < 0.10), beyond, indices)
    return indices.view(*lead, 1, topk)


def make_row_empty(indices, row, s_kv):
    """Row `row` (of the flattened leading dims) gets only invalid indices, alternating -1 / s_kv."""
    flat = indices.view(-1, indices.shape[-1])
    flat[row, 0::2] = -1
    flat[row, 1::2] = s_kv


# ---- reference ------------------------------------------------------------------------------


def reference_sparse_mla(q, kv, indices, sm_scale, topk_length=None, attn_sink=None, natural_log=False):
    """float64 reference for one [s_q, h_q, d_qk] problem, per DESIGN.md §1."""
    s_q, h_q, d_qk = q.shape
    kv2 = kv if kv.dim() == 2 else kv[:, 0, :]
    s_kv = kv2.shape[0]
    idx = indices.reshape(s_q, -1).long()
    topk = idx.shape[1]
    valid = (idx >= 0) & (idx < s_kv)
    if topk_length is not None:
        valid &= torch.arange(topk, device=idx.device)[None, :] < topk_length.long()[:, None]
    gathered = kv2.double()[torch.where(valid, idx, torch.zeros_like(idx))]  # [s_q, topk, d_qk]
    logits = torch.einsum("shd,std->sht", q.double(), gathered) * (sm_scale * LOG2E)
    logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
    max_logits = logits.max(dim=-1).values
    lse = torch.logsumexp(logits * LN2, dim=-1) * LOG2E
    lse_for_out = lse if attn_sink is None else torch.logaddexp2(lse, attn_sink.double()[None, :] * LOG2E)
    weights = torch.exp2(logits - lse_for_out[..., None])
    weights = torch.where(torch.isneginf(lse_for_out)[..., None], torch.zeros_like(weights), weights)
    out = torch.einsum("sht,std->shd", weights, gathered[..., :D_V])
    if natural_log:
        max_logits = max_logits * LN2
        lse = torch.where(torch.isneginf(lse), torch.full_like(lse, float("inf")), lse * LN2)
    return out, max_logits, lse


def reference_batched(q, kv, indices, sm_scale, **kwargs):
    if q.dim() == 3:
        return reference_sparse_mla(q, kv, indices, sm_scale, **kwargs)
    parts = [reference_sparse_mla(q[b], kv, indices[b], sm_scale, **kwargs) for b in range(q.shape[0])]
    return tuple(torch.stack([part[i] for part in parts]) for i in range(3))


def assert_matches_reference(got, ref, seed, what=""):
    out, max_logits, lse = got
    ref_out, ref_max, ref_lse = ref
    tag = f"[seed {seed}] {what}"
    assert out.dtype == torch.bfloat16 and max_logits.dtype == torch.float32 and lse.dtype == torch.float32
    assert not torch.isnan(out).any(), f"{tag}: NaN in out"
    assert not torch.isnan(max_logits).any() and not torch.isnan(lse).any(), f"{tag}: NaN in max_logits/lse"
    error = (out.double() - ref_out).norm() / ref_out.norm().clamp_min(1e-30)
    assert error <= OUT_REL_TOL, f"{tag}: out relative error {error.item():.3e} > {OUT_REL_TOL}"
    for name, value, expected in (("max_logits", max_logits, ref_max), ("lse", lse, ref_lse)):
        finite = torch.isfinite(expected)
        assert torch.equal(torch.isfinite(value), finite), f"{tag}: {name} finite where the reference is not (or back)"
        assert torch.equal(value[~finite].double(), expected[~finite]), f"{tag}: {name} infinities differ"
        if finite.any():
            worst = (value.double()[finite] - expected[finite]).abs().max().item()
            assert worst <= STAT_ABS_TOL, f"{tag}: {name} abs error {worst:.3e} > {STAT_ABS_TOL}"
    empty = torch.isneginf(ref_lse) | torch.isposinf(ref_lse)
    if empty.any():
        assert (out[empty] == 0).all(), f"{tag}: a row without valid indices must give out = 0"


def poisoned_outputs(lead, h_q, device):
    out = torch.full((*lead, h_q, D_V), float("nan"), dtype=torch.bfloat16, device=device)
    max_logits = torch.full((*lead, h_q), float("nan"), dtype=torch.float32, device=device)
    lse = torch.full((*lead, h_q), float("nan"), dtype=torch.float32, device=device)
    return out, max_logits, lse


def sparse_case(rng, s_q=64, h_q=16, d_qk=576, s_kv=4096, topk=2048, batch=None, kv_pad=0):
    lead = (s_q,) if batch is None else (batch, s_q)
    q = randn((*lead, h_q, d_qk), rng)
    kv_wide = randn((s_kv, 1, d_qk + kv_pad), rng)
    kv = kv_wide[:, :, :d_qk]
    indices = random_indices(lead, topk, s_kv, rng)
    make_row_empty(indices, 3 % math.prod(lead), s_kv)
    return q, kv, indices, d_qk ** -0.5


# ---- flash_mla_sparse_fwd ---------------------------------------------------------------------


@pytest.mark.parametrize("h_q", [16, 64])
@pytest.mark.parametrize("topk", [100, 2048])
def test_sparse_fwd_matches_reference_with_invalid_indices_and_an_empty_row(rng, h_q, topk):
    q, kv, indices, scale = sparse_case(rng, h_q=h_q, topk=topk)
    ref = reference_batched(q, kv, indices, scale)
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
    torch.cuda.synchronize()
    assert got[0].shape == (64, h_q, D_V) and got[1].shape == (64, h_q) and got[2].shape == (64, h_q)
    assert got[0].device == q.device
    assert_matches_reference(got, ref, rng.seed, "allocated outputs")
    assert torch.isneginf(got[2][3]).all() and torch.isneginf(got[1][3]).all()

    buffers = poisoned_outputs((64,), h_q, q.device)
    returned = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale, out=buffers[0], max_logits=buffers[1], lse=buffers[2])
    torch.cuda.synchronize()
    assert all(r is b for r, b in zip(returned, buffers)), "out= variant must return the caller's buffers"
    assert_matches_reference(buffers, ref, rng.seed, "out= buffers")


@pytest.mark.parametrize("h_q", [8, 32, 128])
def test_sparse_fwd_native_head_counts(rng, h_q):
    q, kv, indices, scale = sparse_case(rng, s_q=16, h_q=h_q, topk=512)
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
    torch.cuda.synchronize()
    assert_matches_reference(got, reference_batched(q, kv, indices, scale), rng.seed, f"h_q {h_q}")


@pytest.mark.parametrize("topk", [1, 77, 2049])
def test_sparse_fwd_topk_not_a_multiple_of_the_tile(rng, topk):
    q, kv, indices, scale = sparse_case(rng, s_q=8, h_q=16, topk=topk)
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
    torch.cuda.synchronize()
    assert_matches_reference(got, reference_batched(q, kv, indices, scale), rng.seed, f"topk {topk}")


def test_sparse_fwd_d_qk_512(rng):
    q, kv, indices, scale = sparse_case(rng, h_q=16, d_qk=512, topk=256)
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
    torch.cuda.synchronize()
    assert_matches_reference(got, reference_batched(q, kv, indices, scale), rng.seed, "d_qk 512")


def test_sparse_fwd_honours_padded_kv_rows(rng):
    q, kv, indices, scale = sparse_case(rng, h_q=16, topk=512, kv_pad=64)
    assert kv.stride() == (640, 640, 1)
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
    torch.cuda.synchronize()
    assert_matches_reference(got, reference_batched(q, kv, indices, scale), rng.seed, "kv row stride 640")


def test_sparse_fwd_accepts_2d_kv_and_indices(rng):
    q, kv, indices, scale = sparse_case(rng, h_q=16, topk=256, kv_pad=64)
    kv2d, indices2d = kv[:, 0, :], indices[:, 0, :]
    got = nsa_jit.flash_mla_sparse_fwd(q, kv2d, indices2d, scale)
    torch.cuda.synchronize()
    assert_matches_reference(got, reference_batched(q, kv, indices, scale), rng.seed, "2-D kv / indices")


def test_sparse_fwd_with_leading_batch_dimension(rng):
    q, kv, indices, scale = sparse_case(rng, s_q=32, h_q=16, topk=256, batch=2)
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
    torch.cuda.synchronize()
    assert got[0].shape == (2, 32, 16, D_V) and got[2].shape == (2, 32, 16)
    assert_matches_reference(got, reference_batched(q, kv, indices, scale), rng.seed, "batch 2")


@pytest.mark.parametrize("topk", [100, 2048])
def test_sparse_fwd_topk_length_limits_each_row(rng, topk):
    q, kv, indices, scale = sparse_case(rng, h_q=64, topk=topk)
    lengths = torch.randint(0, topk + 1, (64,), generator=rng.generator, device=q.device, dtype=torch.int32)
    lengths[0], lengths[1], lengths[2] = 0, topk, 1  # empty row, full row, one index
    buffers = poisoned_outputs((64,), 64, q.device)
    nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale, topk_length=lengths, out=buffers[0], max_logits=buffers[1], lse=buffers[2])
    torch.cuda.synchronize()
    ref = reference_batched(q, kv, indices, scale, topk_length=lengths)
    assert_matches_reference(buffers, ref, rng.seed, "topk_length")
    assert torch.isneginf(buffers[2][0]).all() and (buffers[0][0] == 0).all()


def test_sparse_fwd_attn_sink_joins_the_denominator_only(rng):
    q, kv, indices, scale = sparse_case(rng, h_q=16, topk=2048)
    sink = randn((16,), rng, dtype=torch.float32, scale=2.0) + 8.0  # comparable to lse: a large effect
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale, D_V, sink)  # positional, as in FlashMLA
    without = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
    torch.cuda.synchronize()
    ref = reference_batched(q, kv, indices, scale, attn_sink=sink)
    assert_matches_reference(got, ref, rng.seed, "attn_sink")
    # lse and max_logits stay the ones without the sink; out shrinks.
    finite = torch.isfinite(without[2])
    assert ((got[2] - without[2])[finite].abs() <= STAT_ABS_TOL).all()
    assert got[0].double().norm() < without[0].double().norm()


def test_sparse_fwd_natural_log_option(rng):
    q, kv, indices, scale = sparse_case(rng, h_q=16, topk=100)
    got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale, natural_log=True)
    torch.cuda.synchronize()
    ref = reference_batched(q, kv, indices, scale, natural_log=True)
    assert_matches_reference(got, ref, rng.seed, "natural_log")
    assert torch.isposinf(got[2][3]).all(), "natural-log convention: empty rows give lse = +inf"
    assert torch.isneginf(got[1][3]).all()


# ---- topk_select ------------------------------------------------------------------------------


def reference_topk(scores, k, lengths=None):
    """Stable sort on (-score, position) of each row's valid prefix; -1 past its end."""
    rows, columns = scores.shape
    keys = -scores.double()
    positions = torch.arange(columns, device=scores.device)
    if lengths is not None:
        keys = torch.where(positions[None, :] < lengths.long()[:, None], keys, torch.full_like(keys, float("inf")))
    order = torch.sort(keys, dim=1, stable=True).indices[:, : min(k, columns)].to(torch.int32)
    result = torch.full((rows, k), -1, dtype=torch.int32, device=scores.device)
    result[:, : order.shape[1]] = order
    valid = torch.full((rows,), columns, device=scores.device) if lengths is None else lengths.long()
    result[torch.arange(k, device=scores.device)[None, :] >= valid.clamp(max=k)[:, None]] = -1
    return result


def assert_same_sets(got, ref, seed, what):
    assert got.dtype == torch.int32 and got.shape == ref.shape, f"[seed {seed}] {what}: {got.dtype} {tuple(got.shape)}"
    same = torch.equal(torch.sort(got, dim=1).values, torch.sort(ref, dim=1).values)
    if not same:
        bad = (torch.sort(got, dim=1).values != torch.sort(ref, dim=1).values).any(dim=1).nonzero().flatten()
        pytest.fail(f"[seed {seed}] {what}: rows {bad[:8].tolist()} select other positions than the reference")


def topk_scores(kind, rows, columns, rng, pad=0):
    shape = (rows, columns + pad)
    if kind == "normal":
        wide = torch.randn(shape, generator=rng.generator, device=rng.device)
    elif kind == "many_ties":
        wide = torch.randint(0, 16, shape, generator=rng.generator, device=rng.device).float()
    elif kind == "near_equal":
        ulp = torch.finfo(torch.float32).eps
        wide = 1.0 + torch.randint(0, 4, shape, generator=rng.generator, device=rng.device).float() * ulp
    elif kind == "all_equal":
        wide = torch.full(shape, 0.5, device=rng.device)
    else:
        raise AssertionError(kind)
    return wide[:, :columns]


@pytest.mark.parametrize("k", [100, 2048])
@pytest.mark.parametrize("kind", ["normal", "many_ties", "near_equal", "all_equal"])
def test_topk_select_matches_stable_reference(rng, k, kind):
    scores = topk_scores(kind, 8, 4096, rng, pad=37)
    assert scores.stride() == (4133, 1)
    lengths = torch.randint(0, 4097, (8,), generator=rng.generator, device=scores.device, dtype=torch.int32)
    lengths[0], lengths[1], lengths[2] = 0, 4096, min(k, 4096) // 2  # empty, full, fewer than k
    got = nsa_jit.topk_select(scores, k, lengths)
    torch.cuda.synchronize()
    assert_same_sets(got, reference_topk(scores, k, lengths), rng.seed, f"{kind}, k {k}")
    assert (got[0] == -1).all()
    assert (got[2, min(k, 4096) // 2 :] == -1).all(), "-1 must fill the tail after the valid entries"

    out = torch.full((8, k), -7, dtype=torch.int32, device=scores.device)
    returned = nsa_jit.topk_select(scores, k, lengths, sorted=True, out=out)
    torch.cuda.synchronize()
    assert returned is out
    assert torch.equal(out, reference_topk(scores, k, lengths)), f"[seed {rng.seed}] sorted=True order differs"


def test_topk_select_without_lengths_and_k_beyond_the_row(rng):
    scores = topk_scores("normal", 4, 50, rng)
    got = nsa_jit.topk_select(scores, 100)
    torch.cuda.synchronize()
    assert_same_sets(got, reference_topk(scores, 100), rng.seed, "k > L")
    assert (got[:, 50:] == -1).all()


def test_topk_select_long_rows(rng):
    scores = topk_scores("many_ties", 2, 131072, rng)
    got = nsa_jit.topk_select(scores, 2048)
    torch.cuda.synchronize()
    assert_same_sets(got, reference_topk(scores, 2048), rng.seed, "2 x 131072, k 2048")


# ---- streams and graphs -----------------------------------------------------------------------

SLEEP_CYCLES = 1_000_000_000  # ~0.5 s of GPU spinning, longer than any host-side call here


def test_sparse_fwd_runs_on_the_current_stream_without_synchronising(rng):
    q_src, kv, indices, scale = sparse_case(rng, h_q=16, topk=2048)
    nsa_jit.flash_mla_sparse_fwd(q_src, kv, indices, scale)  # warm: nothing compiles below
    q = torch.zeros_like(q_src)
    torch.cuda.synchronize()
    side = torch.cuda.Stream(device=q.device)
    with torch.cuda.stream(side):
        torch.cuda._sleep(SLEEP_CYCLES)
        q.copy_(q_src)  # only ordered before the kernel if the kernel runs on `side`
        got = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale)
        still_busy = not side.query()
    side.synchronize()
    assert still_busy, "the call waited for the stream (it must only enqueue)"
    assert_matches_reference(got, reference_batched(q_src, kv, indices, scale), rng.seed, "side stream")


def test_topk_select_runs_on_an_explicit_stream(rng):
    source = topk_scores("normal", 8, 4096, rng)
    nsa_jit.topk_select(source, 100)  # warm
    scores = torch.zeros_like(source)
    out = torch.full((8, 100), -7, dtype=torch.int32, device=source.device)
    torch.cuda.synchronize()
    side = torch.cuda.Stream(device=source.device)
    with torch.cuda.stream(side):
        torch.cuda._sleep(SLEEP_CYCLES)
        scores.copy_(source)
    nsa_jit.topk_select(scores, 100, out=out, stream=side)  # current stream is the default one
    still_busy = not side.query()
    side.synchronize()
    assert still_busy, "the call waited for the stream (it must only enqueue)"
    assert_same_sets(out, reference_topk(source, 100), rng.seed, "explicit stream")


def test_cuda_graph_replay_equals_eager(rng, gpu):
    q, kv, indices, scale = sparse_case(rng, h_q=64, topk=2048)
    sink = randn((64,), rng, dtype=torch.float32)
    lengths = torch.randint(0, 2049, (64,), generator=rng.generator, device=gpu, dtype=torch.int32)
    scores = topk_scores("normal", 16, 8192, rng)
    out, max_logits, lse = poisoned_outputs((64,), 64, gpu)
    picked = torch.full((16, 2048), -7, dtype=torch.int32, device=gpu)

    def step():
        nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale, D_V, sink, lengths, out=out, max_logits=max_logits, lse=lse)
        nsa_jit.topk_select(scores, 2048, out=picked)

    step()  # warm the cache and the context before capture
    torch.cuda.synchronize()
    compiled_before = nsa_jit.compile_count(gpu.index)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    assert nsa_jit.compile_count(gpu.index) == compiled_before, "capture compiled a kernel"

    q.copy_(randn(q.shape, rng))
    scores.copy_(topk_scores("normal", 16, 8192, rng))
    for buffer in (out, max_logits, lse):
        buffer.fill_(float("nan"))
    picked.fill_(-7)
    graph.replay()
    torch.cuda.synchronize()

    eager = nsa_jit.flash_mla_sparse_fwd(q, kv, indices, scale, D_V, sink, lengths)
    eager_picked = nsa_jit.topk_select(scores, 2048)
    torch.cuda.synchronize()
    ref = reference_batched(q, kv, indices, scale, topk_length=lengths, attn_sink=sink)
    assert_matches_reference((out, max_logits, lse), ref, rng.seed, "graph replay")
    assert_matches_reference(eager, ref, rng.seed, "eager after replay")
    assert (out.double() - eager[0].double()).abs().max().item() <= 1e-2
    assert_same_sets(picked, eager_picked, rng.seed, "graph replay vs eager topk")
    assert_same_sets(picked, reference_topk(scores, 2048), rng.seed, "graph replay topk")
    assert nsa_jit.compile_count(gpu.index) == compiled_before, "replay or eager rerun compiled a kernel"


# ---- bad inputs -------------------------------------------------------------------------------


def _valid(gpu, rng):
    q, kv, indices, scale = sparse_case(rng, s_q=8, h_q=16, topk=64)
    return dict(q=q, kv=kv, indices=indices, sm_scale=scale)


BAD_SPARSE = [
    ("q fp16", lambda a: a.update(q=a["q"].half()), TypeError, "q must be bfloat16, got float16"),
    ("kv on cpu", lambda a: a.update(kv=a["kv"].cpu()), ValueError, "kv must be on a CUDA device"),
    ("q last dim strided", lambda a: a.update(q=a["q"].repeat_interleave(2, dim=-1)[..., ::2]), ValueError,
     "q must be contiguous in its last dimension"),
    ("h_kv 2", lambda a: a.update(kv=a["kv"].expand(-1, 2, -1)), ValueError, "kv: h_kv must be 1"),
    ("d_v 256", lambda a: a.update(d_v=256), ValueError, "d_v must be 512, got 256"),
    ("indices int64", lambda a: a.update(indices=a["indices"].long()), TypeError, "indices must be int32, got int64"),
    ("indices rows", lambda a: a.update(indices=a["indices"][:4]), ValueError, "indices: leading dimensions must match"),
    ("d_qk 384", lambda a: a.update(q=a["q"][..., :384].contiguous()), ValueError, "must be 576 or 512, got 384"),
    ("sink shape", lambda a: a.update(attn_sink=torch.zeros(8, device=a["q"].device)), ValueError, "attn_sink must have shape [16]"),
    ("topk_length dtype", lambda a: a.update(topk_length=torch.zeros(8, dtype=torch.int64, device=a["q"].device)),
     TypeError, "topk_length must be int32"),
    ("out shape", lambda a: a.update(out=torch.empty(8, 16, 576, dtype=torch.bfloat16, device=a["q"].device)),
     ValueError, "out must have shape [8, 16, 512]"),
    ("lse dtype", lambda a: a.update(lse=torch.empty(8, 16, dtype=torch.float64, device=a["q"].device)),
     TypeError, "lse must be float32, got float64"),
    ("max_logits on cpu", lambda a: a.update(max_logits=torch.empty(8, 16)), ValueError, "max_logits must be on a CUDA device"),
]


@pytest.mark.parametrize("name, change, error, message", BAD_SPARSE, ids=[case[0] for case in BAD_SPARSE])
def test_sparse_fwd_bad_input_is_refused(gpu, rng, name, change, error, message):
    arguments = _valid(gpu, rng)
    change(arguments)
    with pytest.raises(error) as caught:
        nsa_jit.flash_mla_sparse_fwd(**arguments)
    assert message in str(caught.value)


BAD_TOPK = [
    ("scores bf16", dict(scores=lambda s: s.bfloat16()), TypeError, "scores must be float32, got bfloat16"),
    ("scores on cpu", dict(scores=lambda s: s.cpu()), ValueError, "scores must be on a CUDA device"),
    ("k 0", dict(k=0), ValueError, "k must be in [1, 2147483647], got 0"),
    ("lengths int64", dict(lengths=lambda s: torch.zeros(s.shape[0], dtype=torch.int64, device=s.device)), TypeError,
     "lengths must be int32"),
    ("out shape", dict(out=lambda s: torch.empty(s.shape[0], 11, dtype=torch.int32, device=s.device)), ValueError,
     "out must have shape [4, 10]"),
]


@pytest.mark.parametrize("name, change, error, message", BAD_TOPK, ids=[case[0] for case in BAD_TOPK])
def test_topk_select_bad_input_is_refused(gpu, rng, name, change, error, message):
    scores = topk_scores("normal", 4, 300, rng)
    arguments = dict(scores=scores, k=10)
    for key, value in change.items():
        arguments[key] = value(scores) if callable(value) else value
    with pytest.raises(error) as caught:
        nsa_jit.topk_select(**arguments)
    assert message in str(caught.value)


@pytest.mark.skipif("torch" not in globals() or not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                    reason="needs two GPUs")
def test_tensors_on_two_gpus_are_refused(gpu, rng):
    arguments = _valid(gpu, rng)
    other = 1 if gpu.index == 0 else 0
    arguments["kv"] = arguments["kv"].to(torch.device("cuda", other))
    with pytest.raises(ValueError, match="same CUDA device"):
        nsa_jit.flash_mla_sparse_fwd(**arguments)


def _raw_sparse_args(arguments, outputs):
    """The C struct the package would pass, built from checked tensors (for corrupting)."""
    from nsa_jit import _tensors

    args = _lib.SparseMlaArgs()
    args.q = _tensors.describe(arguments["q"], "q").to_c()
    args.kv = _tensors.describe(arguments["kv"], "kv").to_c()
    args.indices = _tensors.describe(arguments["indices"], "indices").to_c()
    args.out = _tensors.describe(outputs[0], "out").to_c()
    args.max_logits = _tensors.describe(outputs[1], "max_logits").to_c()
    args.lse = _tensors.describe(outputs[2], "lse").to_c()
    args.sm_scale = arguments["sm_scale"]
    args.d_v = D_V
    return args


CORRUPTIONS = [
    ("d_v 256", lambda args: setattr(args, "d_v", 256)),
    ("q dtype fp32", lambda args: setattr(args.q, "dtype", _lib.DTYPE_FP32)),
    ("kv d_qk differs", lambda args: args.kv.shape.__setitem__(2, 512)),
    ("out missing", lambda args: setattr(args.out, "data", None)),
]


@pytest.mark.parametrize("name, corrupt", CORRUPTIONS, ids=[case[0] for case in CORRUPTIONS])
def test_library_refuses_a_bad_struct_with_a_message_and_launches_nothing(gpu, rng, name, corrupt):
    arguments = _valid(gpu, rng)
    outputs = poisoned_outputs((8,), 16, gpu)
    lib = _lib.load_library()
    context = nsa_jit.get_context(gpu.index)
    args = _raw_sparse_args(arguments, outputs)
    corrupt(args)
    status = lib.nsajit_sparse_mla_fwd(context.handle, ctypes.byref(args), torch.cuda.current_stream(gpu).cuda_stream or None)
    torch.cuda.synchronize()
    assert status == _lib.ERROR_INVALID_ARGUMENT, f"{name}: status {status}, message {_lib.last_error(lib)!r}"
    assert _lib.last_error(lib), "an error must come with a message"
    assert all(torch.isnan(buffer).all() for buffer in outputs), "a refused call must launch nothing"
    with pytest.raises(nsa_jit.NsaJitInvalidArgumentError, match=r"nsajit_sparse_mla_fwd failed \(NSAJIT_ERROR_INVALID_ARGUMENT\): .+"):
        _lib.check_status(lib, status, "nsajit_sparse_mla_fwd")
