"""Argument checks of flash_mla_sparse_fwd and topk_select, with fake tensors (no torch, no GPU).

Every check runs before the library is loaded, so with NSA_JIT_LIBRARY pointing nowhere a
bad argument raises its own precise error and a good set of arguments reaches the
(absent) library and raises NsaJitUnavailableError instead.
"""

import pytest

import nsa_jit
from nsa_jit import DeviceTensor
from fakes import FakeCudaArray, FakeTensor, sparse_problem


def call_sparse(problem, sm_scale=0.04, **extra):
    arguments = dict(problem)
    arguments.update(extra)
    q, kv, indices = arguments.pop("q"), arguments.pop("kv"), arguments.pop("indices")
    return nsa_jit.flash_mla_sparse_fwd(q, kv, indices, sm_scale, **arguments)


def expect(problem_changes, error, message, **extra):
    problem = sparse_problem(**extra.pop("shape", {}))
    problem.update(problem_changes)
    with pytest.raises(error) as caught:
        call_sparse(problem, **extra)
    assert message in str(caught.value), str(caught.value)
    assert not isinstance(caught.value, nsa_jit.NsaJitUnavailableError)


@pytest.mark.usefixtures("no_library")
class TestSparseMlaChecks:
    def test_consistent_arguments_pass_every_check(self):
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            call_sparse(sparse_problem())

    def test_batched_q_with_batched_indices_passes(self):
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            call_sparse(sparse_problem(batch=2))

    def test_d_qk_512_passes(self):
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            call_sparse(sparse_problem(d_qk=512))

    def test_padded_kv_rows_and_2d_forms_pass(self):
        problem = sparse_problem()
        problem["kv"] = FakeTensor((64, 1, 576), "bfloat16", strides=(640, 640, 1))
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            call_sparse(problem)
        problem["kv"] = FakeTensor((64, 576), "bfloat16", strides=(640, 1))
        problem["indices"] = FakeTensor((4, 8), "int32")
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            call_sparse(problem)

    def test_optional_inputs_with_right_shapes_pass(self):
        problem = sparse_problem(h_q=16)
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            call_sparse(problem, attn_sink=FakeTensor((16,), "float32"), topk_length=FakeTensor((4,), "int32"))

    def test_q_on_cpu(self):
        expect({"q": FakeTensor((4, 16, 576), "bfloat16", "cpu")}, ValueError, "q must be on a CUDA device, got a tensor on cpu")

    def test_q_wrong_dtype(self):
        expect({"q": FakeTensor((4, 16, 576), "float16")}, TypeError, "q must be bfloat16, got float16")

    def test_q_wrong_rank(self):
        expect({"q": FakeTensor((16, 576), "bfloat16")}, ValueError, "q must be [s_q, h_q, d_qk] or [b, s_q, h_q, d_qk] (3 or 4 dimensions), got shape [16, 576]")

    def test_q_d_qk_unsupported(self):
        expect({"q": FakeTensor((4, 16, 384), "bfloat16")}, ValueError, "d_qk (last dimension) must be 576 or 512, got 384")

    def test_q_last_dimension_not_contiguous(self):
        q = FakeTensor((4, 16, 576), "bfloat16", strides=(16 * 576 * 2, 576 * 2, 2))
        expect({"q": q}, ValueError, "q must be contiguous in its last dimension (stride 1), got strides [18432, 1152, 2]")

    def test_q_negative_stride(self):
        expect({"q": FakeTensor((4, 16, 576), "bfloat16", strides=(-9216, 576, 1))}, ValueError, "q has a negative stride")

    def test_q_null_pointer(self):
        expect({"q": FakeTensor((4, 16, 576), "bfloat16", data_ptr=0)}, ValueError, "q has a null data pointer")

    def test_d_v_not_512(self):
        expect({}, ValueError, "d_v must be 512, got 256", d_v=256)

    def test_d_v_not_an_int(self):
        expect({}, TypeError, "d_v must be an int, got float", d_v=512.0)

    def test_sm_scale_not_a_number(self):
        expect({}, TypeError, "sm_scale must be a float, got str", sm_scale="0.1")

    def test_kv_wrong_dtype(self):
        expect({"kv": FakeTensor((64, 1, 576), "float32")}, TypeError, "kv must be bfloat16, got float32")

    def test_kv_h_kv_not_one(self):
        expect({"kv": FakeTensor((64, 2, 576), "bfloat16")}, ValueError, "kv: h_kv must be 1 (MQA), got shape [64, 2, 576]")

    def test_kv_d_qk_differs_from_q(self):
        expect({"kv": FakeTensor((64, 1, 512), "bfloat16")}, ValueError, "kv: d_qk must match q's (576), got shape [64, 1, 512]")

    def test_kv_without_rows(self):
        expect({"kv": FakeTensor((0, 1, 576), "bfloat16")}, ValueError, "kv must have at least one row")

    def test_kv_on_another_gpu(self):
        expect({"kv": FakeTensor((64, 1, 576), "bfloat16", "cuda:1")}, ValueError,
               "all tensors must be on the same CUDA device, got q on cuda:0, kv on cuda:1")

    def test_indices_wrong_dtype(self):
        expect({"indices": FakeTensor((4, 1, 8), "int64")}, TypeError, "indices must be int32, got int64")

    def test_indices_rows_differ_from_q(self):
        expect({"indices": FakeTensor((5, 1, 8), "int32")}, ValueError, "indices: leading dimensions must match q's [4], got shape [5, 1, 8]")

    def test_indices_h_kv_not_one(self):
        expect({"indices": FakeTensor((4, 2, 8), "int32")}, ValueError, "indices: h_kv must be 1 (MQA), got shape [4, 2, 8]")

    def test_indices_empty_topk(self):
        expect({"indices": FakeTensor((4, 1, 0), "int32")}, ValueError, "topk (last dimension) must be at least 1")

    def test_indices_unbatched_for_batched_q(self):
        expect({"indices": FakeTensor((2, 1, 8), "int32")}, ValueError, "indices: leading dimensions must match q's [2, 4]",
               shape={"batch": 2})

    def test_attn_sink_wrong_shape(self):
        expect({}, ValueError, "attn_sink must have shape [16] ([h_q]), got [8]", attn_sink=FakeTensor((8,), "float32"))

    def test_attn_sink_wrong_dtype(self):
        expect({}, TypeError, "attn_sink must be float32, got bfloat16", attn_sink=FakeTensor((16,), "bfloat16"))

    def test_topk_length_wrong_shape(self):
        expect({}, ValueError, "topk_length must have shape [4]", topk_length=FakeTensor((4, 1), "int32"))

    def test_topk_length_wrong_dtype(self):
        expect({}, TypeError, "topk_length must be int32, got int64", topk_length=FakeTensor((4,), "int64"))

    def test_out_wrong_shape(self):
        expect({"out": FakeTensor((4, 16, 576), "bfloat16")}, ValueError, "out must have shape [4, 16, 512]")

    def test_out_wrong_dtype(self):
        expect({"out": FakeTensor((4, 16, 512), "float32")}, TypeError, "out must be bfloat16, got float32")

    def test_out_on_cpu(self):
        expect({"out": FakeTensor((4, 16, 512), "bfloat16", "cpu")}, ValueError, "out must be on a CUDA device")

    def test_out_expanded_is_refused(self):
        expect({"out": FakeTensor((4, 16, 512), "bfloat16", strides=(0, 512, 1))}, ValueError, "out is an output but has a zero stride")

    def test_lse_wrong_dtype(self):
        expect({"lse": FakeTensor((4, 16), "bfloat16")}, TypeError, "lse must be float32, got bfloat16")

    def test_max_logits_wrong_shape(self):
        expect({"max_logits": FakeTensor((4, 8), "float32")}, ValueError, "max_logits must have shape [4, 16]")

    def test_max_logits_on_another_gpu(self):
        expect({"max_logits": FakeTensor((4, 16), "float32", "cuda:3")}, ValueError, "same CUDA device")

    def test_not_a_tensor(self):
        expect({"q": [[1.0]]}, TypeError, "q must be a torch tensor, a nsa_jit.DeviceTensor or an object with __cuda_array_interface__, got list")

    def test_none_tensor(self):
        expect({"kv": None}, TypeError, "kv must be a tensor, got None")


@pytest.mark.usefixtures("no_library")
class TestTopkChecks:
    def scores(self, shape=(4, 1000), dtype="float32", **kw):
        return FakeTensor(shape, dtype, **kw)

    def test_consistent_arguments_pass_every_check(self):
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            nsa_jit.topk_select(self.scores(strides=(1024, 1)), 16, FakeTensor((4,), "int32"), sorted=True,
                                out=FakeTensor((4, 16), "int32"))

    @pytest.mark.parametrize(
        "kwargs, error, message",
        [
            (dict(scores=FakeTensor((4, 1000), "bfloat16")), TypeError, "scores must be float32, got bfloat16"),
            (dict(scores=FakeTensor((4000,), "float32")), ValueError, "scores must be [B, L] (2 dimensions)"),
            (dict(scores=FakeTensor((4, 0), "float32")), ValueError, "scores must have at least one column"),
            (dict(scores=FakeTensor((4, 1000), "float32", "cpu")), ValueError, "scores must be on a CUDA device"),
            (dict(scores=FakeTensor((4, 1000), "float32", strides=(1, 4))), ValueError, "scores must be contiguous in its last dimension"),
            (dict(k=0), ValueError, "k must be in [1, 2147483647], got 0"),
            (dict(k=True), TypeError, "k must be an int, got bool"),
            (dict(k=16.0), TypeError, "k must be an int, got float"),
            (dict(lengths=FakeTensor((5,), "int32")), ValueError, "lengths must have shape [4] ([B]), got [5]"),
            (dict(lengths=FakeTensor((4,), "int64")), TypeError, "lengths must be int32, got int64"),
            (dict(out=FakeTensor((4, 17), "int32")), ValueError, "out must have shape [4, 16] ([B, k]), got [4, 17]"),
            (dict(out=FakeTensor((4, 16), "int64")), TypeError, "out must be int32, got int64"),
            (dict(out=FakeTensor((4, 16), "int32", "cuda:1")), ValueError, "same CUDA device"),
        ],
    )
    def test_bad_argument(self, kwargs, error, message):
        arguments = dict(scores=self.scores(), k=16)
        arguments.update(kwargs)
        with pytest.raises(error) as caught:
            nsa_jit.topk_select(**arguments)
        assert message in str(caught.value), str(caught.value)


class TestCudaArrayInterface:
    def test_v2_typestr_reads_as_bfloat16_and_byte_strides_become_elements(self):
        array = FakeCudaArray((8, 1, 576), "<V2", 0x1000, strides=(1280, 1280, 2))
        described = DeviceTensor.from_cuda_array_interface(array, device=2)
        assert described.dtype == "bfloat16"
        assert described.stride() == (640, 640, 1)
        assert described.data_ptr() == 0x1000 and described.device.index == 2

    def test_missing_strides_mean_c_contiguous(self):
        described = DeviceTensor.from_cuda_array_interface(FakeCudaArray((3, 5), "<f4", 0x2000))
        assert described.stride() == (5, 1) and described.dtype == "float32"

    def test_half_precision_is_refused_with_the_way_out(self):
        with pytest.raises(TypeError, match="typestr '<f2'.*pass dtype="):
            DeviceTensor.from_cuda_array_interface(FakeCudaArray((3, 5), "<f2", 0x2000))

    def test_misaligned_byte_strides_are_refused(self):
        with pytest.raises(ValueError, match="not multiples of the item size 4"):
            DeviceTensor.from_cuda_array_interface(FakeCudaArray((3, 5), "<i4", 0x2000, strides=(22, 4)))

    def test_explicit_dtype_overrides_the_typestr(self):
        described = DeviceTensor.from_cuda_array_interface(FakeCudaArray((3, 5), "<u2", 0x2000), dtype="bfloat16")
        assert described.dtype == "bfloat16" and described.stride() == (5, 1)

    def test_cai_inputs_are_checked_like_tensors(self, no_library):
        problem = sparse_problem()
        problem["q"] = FakeCudaArray((4, 16, 576), "<f4", 0x3000)
        with pytest.raises(TypeError, match="q must be bfloat16, got float32"):
            call_sparse(problem)
        problem["q"] = FakeCudaArray((4, 16, 576), "<V2", 0x3000)
        with pytest.raises(nsa_jit.NsaJitUnavailableError):
            call_sparse(problem)
