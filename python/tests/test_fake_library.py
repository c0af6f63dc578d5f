"""The ctypes path end to end against a fake libnsajit.so built from the real header:
what Python passes is what C receives, and C's errors come back as Python exceptions."""

import math
import os

import pytest

import nsa_jit
from nsa_jit import _lib
from fakes import FakeCudaArray, FakeTensor, sparse_problem


def run_sparse(problem, sm_scale=0.0625, **extra):
    arguments = dict(problem)
    arguments.update(extra)
    q, kv, indices = arguments.pop("q"), arguments.pop("kv"), arguments.pop("indices")
    return nsa_jit.flash_mla_sparse_fwd(q, kv, indices, sm_scale, **arguments)


def as_tuple(c_tensor):
    return (c_tensor.data or 0, c_tensor.dtype, c_tensor.ndim,
            tuple(c_tensor.shape[: c_tensor.ndim]), tuple(c_tensor.strides[: c_tensor.ndim]))


def expected(fake, dtype):
    return (fake.data_ptr(), dtype, len(fake.shape), tuple(fake.shape), tuple(fake.stride()))


def test_sparse_call_passes_pointers_shapes_strides_and_scalars(fake_library):
    problem = sparse_problem(s_q=3, h_q=32, topk=100)
    problem["kv"] = FakeTensor((50, 1, 576), "bfloat16", strides=(640, 640, 1))
    sink, lengths = FakeTensor((32,), "float32"), FakeTensor((3,), "int32")
    result = run_sparse(problem, sm_scale=0.125, attn_sink=sink, topk_length=lengths, natural_log=True, stream=0xABC0)
    assert result == (problem["out"], problem["max_logits"], problem["lse"])
    args = fake_library.last_sparse()
    assert as_tuple(args.q) == expected(problem["q"], _lib.DTYPE_BF16)
    assert as_tuple(args.kv) == expected(problem["kv"], _lib.DTYPE_BF16)
    assert as_tuple(args.indices) == expected(problem["indices"], _lib.DTYPE_INT32)
    assert as_tuple(args.attn_sink) == expected(sink, _lib.DTYPE_FP32)
    assert as_tuple(args.topk_length) == expected(lengths, _lib.DTYPE_INT32)
    assert as_tuple(args.out) == expected(problem["out"], _lib.DTYPE_BF16)
    assert as_tuple(args.max_logits) == expected(problem["max_logits"], _lib.DTYPE_FP32)
    assert as_tuple(args.lse) == expected(problem["lse"], _lib.DTYPE_FP32)
    assert args.sm_scale == 0.125 and args.d_v == 512 and args.flags == _lib.LSE_NATURAL_LOG
    assert fake_library.last_stream() == 0xABC0


def test_absent_optionals_are_null_and_base2_is_the_default(fake_library):
    problem = sparse_problem(batch=2)
    run_sparse(problem)
    args = fake_library.last_sparse()
    assert not args.attn_sink.data and not args.topk_length.data
    assert args.flags == 0
    assert args.q.ndim == 4 and args.indices.ndim == 4 and args.out.ndim == 4
    assert math.isclose(args.sm_scale, 0.0625)
    assert fake_library.last_stream() is None  # fake tensors: no torch stream, NULL = default


def test_stream_objects_with_cuda_stream_are_accepted(fake_library):
    class Stream:
        cuda_stream = 0x5000

    run_sparse(sparse_problem(), stream=Stream())
    assert fake_library.last_stream() == 0x5000
    with pytest.raises(TypeError, match="stream must be an int handle"):
        run_sparse(sparse_problem(), stream="s")


def test_size_one_last_dimension_gets_stride_one(fake_library):
    problem = sparse_problem(topk=1)
    problem["indices"] = FakeTensor((4, 1, 1), "int32", strides=(1, 1, 7))
    run_sparse(problem)
    assert tuple(fake_library.last_sparse().indices.strides[:3]) == (1, 1, 1)


def test_cuda_array_interface_inputs_reach_c(fake_library):
    problem = sparse_problem()
    problem["kv"] = FakeCudaArray((64, 1, 576), "<V2", 0x4000, strides=(1280, 1280, 2))
    run_sparse(problem)
    args = fake_library.last_sparse()
    assert as_tuple(args.kv) == (0x4000, _lib.DTYPE_BF16, 3, (64, 1, 576), (640, 640, 1))


def test_library_error_becomes_exception_with_its_message(fake_library):
    nsa_jit.get_context(0)  # created first, so the failure hits the launch
    fake_library.fail_next(_lib.ERROR_COMPILE_FAILED, "nvrtc: error: identifier undefined")
    with pytest.raises(nsa_jit.NsaJitError) as caught:
        run_sparse(sparse_problem())
    assert str(caught.value) == (
        "nsajit_sparse_mla_fwd failed (NSAJIT_ERROR_COMPILE_FAILED): nvrtc: error: identifier undefined")
    assert caught.value.status == _lib.ERROR_COMPILE_FAILED
    assert not isinstance(caught.value, ValueError)


def test_library_invalid_argument_is_also_a_value_error(fake_library):
    nsa_jit.get_context(0)
    fake_library.fail_next(_lib.ERROR_INVALID_ARGUMENT, "h_q 12 is not supported")
    with pytest.raises(ValueError, match=r"^nsajit_topk_select failed \(NSAJIT_ERROR_INVALID_ARGUMENT\): h_q 12 is not supported$"):
        nsa_jit.topk_select(FakeTensor((2, 10), "float32"), 3, out=FakeTensor((2, 3), "int32"))


def test_no_launch_for_zero_query_rows(fake_library):
    calls = fake_library.count("sparse_calls")
    problem = sparse_problem(s_q=0)
    assert run_sparse(problem) == (problem["out"], problem["max_logits"], problem["lse"])
    assert fake_library.count("sparse_calls") == calls


def test_outputs_cannot_be_allocated_without_torch_tensors(fake_library):
    problem = sparse_problem()
    del problem["lse"]
    with pytest.raises(TypeError, match="lse was not given and cannot be allocated.*pass lse= explicitly"):
        run_sparse(problem)


def test_topk_call_passes_k_sorted_and_tensors(fake_library):
    scores = FakeTensor((5, 1000), "float32", strides=(1024, 1))
    lengths, out = FakeTensor((5,), "int32"), FakeTensor((5, 7), "int32")
    assert nsa_jit.topk_select(scores, 7, lengths, sorted=True, out=out, stream=0x77) is out
    args = fake_library.last_topk()
    assert as_tuple(args.scores) == expected(scores, _lib.DTYPE_FP32)
    assert as_tuple(args.lengths) == expected(lengths, _lib.DTYPE_INT32)
    assert as_tuple(args.indices) == expected(out, _lib.DTYPE_INT32)
    assert args.k == 7 and args.sorted == 1
    nsa_jit.topk_select(scores, 7, out=out)
    args = fake_library.last_topk()
    assert not args.lengths.data and args.sorted == 0


def test_one_context_per_device_created_lazily_with_env_caches(fake_library, tmp_path):
    os.environ["NSA_JIT_CACHE"] = str(tmp_path / "cache.sqlite")
    os.environ["NSA_JIT_SHIPPED_CACHE"] = str(tmp_path / "shipped.sqlite")
    try:
        creates = fake_library.count("creates")
        run_sparse(sparse_problem(device="cuda:1"))
        run_sparse(sparse_problem(device="cuda:1"))
        assert fake_library.count("creates") == creates + 1
        assert fake_library.count("last_device") == 1
        assert fake_library.last_option("cache") == str(tmp_path / "cache.sqlite")
        assert fake_library.last_option("shipped") == str(tmp_path / "shipped.sqlite")
        assert fake_library.last_option("backend") is None
        assert nsa_jit.compile_count(1) == 1
        run_sparse(sparse_problem(device="cuda:0"))
        assert fake_library.count("creates") == creates + 2 and fake_library.count("last_device") == 0
    finally:
        del os.environ["NSA_JIT_CACHE"], os.environ["NSA_JIT_SHIPPED_CACHE"]


def test_configure_sets_context_options_before_first_use_only(fake_library, tmp_path):
    nsa_jit.configure(shipped_cache=str(tmp_path / "ship.sqlite"), backend="cuda", verbose=True)
    run_sparse(sparse_problem())
    assert fake_library.last_option("shipped") == str(tmp_path / "ship.sqlite")
    assert fake_library.last_option("backend") == "cuda"
    assert fake_library.last_option("cache") is None  # NULL: the library's default
    assert fake_library.count("last_verbose") == 1
    with pytest.raises(RuntimeError, match="before the first kernel call"):
        nsa_jit.configure(cache_path="/tmp/other.sqlite")


def test_explicit_context_is_used_and_closes(fake_library, tmp_path):
    destroys = fake_library.count("destroys")
    with nsa_jit.Context(2, cache_path=str(tmp_path / "c.sqlite")) as context:
        assert fake_library.last_option("cache") == str(tmp_path / "c.sqlite")
        nsa_jit.topk_select(FakeTensor((2, 10), "float32", "cuda:2"), 3, out=FakeTensor((2, 3), "int32", "cuda:2"),
                            context=context)
        assert context.compile_count() == 2
    assert fake_library.count("destroys") == destroys + 1
    with pytest.raises(nsa_jit.NsaJitError, match="closed"):
        context.compile_count()


def test_context_creation_failure_carries_the_library_message(fake_library):
    fake_library.fail_next(_lib.ERROR_DEVICE, "cuda: no GPU with ordinal 5 (2 present)")
    with pytest.raises(nsa_jit.NsaJitError) as caught:
        nsa_jit.Context(5)
    assert "nsajit_create(device 5) failed (NSAJIT_ERROR_DEVICE): cuda: no GPU with ordinal 5 (2 present)" == str(caught.value)


def test_library_version_and_path(fake_library):
    assert nsa_jit.library_version() == "0.1.0-fake"
    assert nsa_jit.library_path() == str(fake_library.path)


def test_a_dropped_private_context_is_destroyed_but_shared_ones_live_on(fake_library):
    import gc

    destroys = fake_library.count("destroys")
    nsa_jit.Context(0)  # no reference kept
    gc.collect()
    assert fake_library.count("destroys") == destroys + 1
    shared = nsa_jit.get_context(0)
    assert nsa_jit.get_context(0) is shared
    del shared
    gc.collect()
    assert fake_library.count("destroys") == destroys + 1
