"""The package imports anywhere, and a missing library is a clear, actionable error."""

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nsa_jit
from nsa_jit import _lib
from fakes import sparse_problem

PACKAGE_DIR = Path(nsa_jit.__file__).resolve().parent


def test_package_imports_and_exports_its_api():
    assert re.fullmatch(r"\d+\.\d+\.\d+", nsa_jit.__version__)
    for name in nsa_jit.__all__:
        assert hasattr(nsa_jit, name), name


def test_import_loads_neither_torch_nor_the_library():
    code = (
        "import sys, nsa_jit, nsa_jit._lib as L; "
        "print('torch' in sys.modules, L.library_path())"
    )
    env = dict(os.environ, NSA_JIT_LIBRARY="/nonexistent/libnsajit.so")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=str(PACKAGE_DIR.parent))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "None"]


def test_signature_is_flashmla_positional_order_then_keyword_extras():
    parameters = inspect.signature(nsa_jit.flash_mla_sparse_fwd).parameters
    positional = [p.name for p in parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == ["q", "kv", "indices", "sm_scale", "d_v", "attn_sink", "topk_length"]
    assert parameters["d_v"].default == 512
    keyword_only = {p.name for p in parameters.values() if p.kind == p.KEYWORD_ONLY}
    assert {"out", "max_logits", "lse", "natural_log"} <= keyword_only
    topk = inspect.signature(nsa_jit.topk_select).parameters
    assert [p for p in topk][:3] == ["scores", "k", "lengths"]
    assert topk["sorted"].kind == inspect.Parameter.KEYWORD_ONLY


def test_missing_library_error_names_the_path_and_the_fix(no_library):
    with pytest.raises(nsa_jit.NsaJitUnavailableError) as caught:
        nsa_jit.library_version()
    message = str(caught.value)
    assert str(no_library) in message
    assert "$NSA_JIT_LIBRARY" in message and "no such file" in message
    assert "set NSA_JIT_LIBRARY=" in message and "cmake" in message
    assert caught.value.status == _lib.ERROR_UNAVAILABLE
    assert isinstance(caught.value, nsa_jit.NsaJitError)


def test_valid_call_without_library_raises_unavailable_after_the_checks(no_library):
    problem = sparse_problem()
    with pytest.raises(nsa_jit.NsaJitUnavailableError):
        nsa_jit.flash_mla_sparse_fwd(problem["q"], problem["kv"], problem["indices"], 0.04,
                                     out=problem["out"], max_logits=problem["max_logits"], lse=problem["lse"])
    with pytest.raises(nsa_jit.NsaJitUnavailableError):
        nsa_jit.compile_count(0)


def test_default_search_order_is_package_then_build_then_loader(clean_state):
    paths = [path for path, _ in _lib.candidate_paths()]
    assert paths[0] == str(PACKAGE_DIR / "libnsajit.so")
    assert paths[1] == str(PACKAGE_DIR.parent.parent / "build" / "libnsajit.so")
    assert paths[-2:] == ["libnsajit.so.0", "libnsajit.so"]


def test_explicit_library_env_is_the_only_candidate(clean_state):
    clean_state.setenv("NSA_JIT_LIBRARY", "/opt/x/libnsajit.so")
    assert [path for path, _ in _lib.candidate_paths()] == ["/opt/x/libnsajit.so"]


def test_a_file_that_is_not_a_library_is_reported_with_the_loader_message(clean_state, tmp_path):
    bogus = tmp_path / "libnsajit.so"
    bogus.write_text("not an ELF file")
    clean_state.setenv("NSA_JIT_LIBRARY", str(bogus))
    with pytest.raises(nsa_jit.NsaJitUnavailableError) as caught:
        nsa_jit.library_version()
    assert str(bogus) in str(caught.value)
    assert "no such file" not in str(caught.value)


def test_a_library_without_the_abi_is_rejected(clean_state):
    clean_state.setenv("NSA_JIT_LIBRARY", "libm.so.6")
    with pytest.raises(nsa_jit.NsaJitUnavailableError) as caught:
        nsa_jit.library_version()
    assert "not the nsa-jit C ABI" in str(caught.value)
