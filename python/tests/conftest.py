"""Fixtures: an absent library, and a fake libnsajit.so compiled from fake_nsajit.c."""

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import nsa_jit
from nsa_jit import _lib, api

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent.parent
HEADER_DIR = Path(os.environ.get("NSA_JIT_INCLUDE_DIR", REPO_ROOT / "runtime" / "include"))
HEADER = HEADER_DIR / "nsajit" / "nsajit.h"


def _reset():
    _lib.reset_for_tests()
    api._reset_contexts_for_tests()


@pytest.fixture
def clean_state(monkeypatch):
    """No library loaded, no contexts, and none of the package's env variables set."""
    for name in ("NSA_JIT_LIBRARY", "NSA_JIT_CACHE", "NSA_JIT_SHIPPED_CACHE", "NSA_JIT_BACKEND", "NSA_JIT_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    _reset()
    yield monkeypatch
    _reset()


@pytest.fixture
def no_library(clean_state, tmp_path):
    """NSA_JIT_LIBRARY points at a file that does not exist: every call must say so."""
    missing = tmp_path / "nowhere" / "libnsajit.so"
    clean_state.setenv("NSA_JIT_LIBRARY", str(missing))
    return missing


def require_compiler_and_header():
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot compile the C side of this test")
    if not HEADER.exists():
        pytest.skip(f"nsajit.h not found at {HEADER} (set NSA_JIT_INCLUDE_DIR)")


@pytest.fixture(scope="session")
def fake_library_path(tmp_path_factory):
    require_compiler_and_header()
    out = tmp_path_factory.mktemp("fake") / "libnsajit_fake.so"
    command = ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
               f"-I{HEADER_DIR}", str(TESTS_DIR / "fake_nsajit.c"), "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"compiling the fake library failed:\n{result.stderr}"
    return out


class FakeLibrary:
    """The test hooks of the loaded fake library (same dlopen handle as the package's)."""

    def __init__(self, path):
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        lib = self.lib
        lib.fake_fail_next.argtypes = [ctypes.c_int, ctypes.c_char_p]
        lib.fake_last_sparse.argtypes = [ctypes.POINTER(_lib.SparseMlaArgs)]
        lib.fake_last_topk.argtypes = [ctypes.POINTER(_lib.TopkArgs)]
        lib.fake_last_stream.restype = ctypes.c_void_p
        for name in ("fake_last_backend", "fake_last_cache", "fake_last_shipped"):
            getattr(lib, name).restype = ctypes.c_char_p

    def fail_next(self, status, message):
        self.lib.fake_fail_next(status, message.encode())

    def last_sparse(self):
        args = _lib.SparseMlaArgs()
        self.lib.fake_last_sparse(ctypes.byref(args))
        return args

    def last_topk(self):
        args = _lib.TopkArgs()
        self.lib.fake_last_topk(ctypes.byref(args))
        return args

    def last_stream(self):
        return self.lib.fake_last_stream()

    def count(self, name):
        return getattr(self.lib, "fake_" + name)()

    def last_option(self, name):
        value = getattr(self.lib, "fake_last_" + name)()
        return value.decode() if isinstance(value, bytes) else value


@pytest.fixture
def fake_library(clean_state, fake_library_path):
    clean_state.setenv("NSA_JIT_LIBRARY", str(fake_library_path))
    fake = FakeLibrary(fake_library_path)
    assert nsa_jit.library_version() == "0.1.0-fake"
    return fake
