"""The ctypes mirrors have the C header's sizes, offsets and constants (checked with gcc)."""

import ctypes
import subprocess

import pytest

from nsa_jit import _lib
from conftest import HEADER_DIR, require_compiler_and_header

STRUCTS = {
    "nsajit_tensor": (_lib.Tensor, ["data", "dtype", "ndim", "shape", "strides"]),
    "nsajit_options": (_lib.Options, ["abi_version", "device_ordinal", "backend", "cache_path", "shipped_cache_path", "verbose"]),
    "nsajit_sparse_mla_args": (_lib.SparseMlaArgs, ["q", "kv", "indices", "topk_length", "attn_sink", "out", "max_logits", "lse", "sm_scale", "d_v", "flags"]),
    "nsajit_topk_args": (_lib.TopkArgs, ["scores", "lengths", "indices", "k", "sorted"]),
}
CONSTANTS = {
    "NSAJIT_ABI_VERSION": _lib.ABI_VERSION,
    "NSAJIT_MAX_DIMS": _lib.MAX_DIMS,
    "NSAJIT_OK": _lib.OK,
    "NSAJIT_ERROR_INVALID_ARGUMENT": _lib.ERROR_INVALID_ARGUMENT,
    "NSAJIT_ERROR_UNAVAILABLE": _lib.ERROR_UNAVAILABLE,
    "NSAJIT_ERROR_COMPILE_FAILED": _lib.ERROR_COMPILE_FAILED,
    "NSAJIT_ERROR_DEVICE": _lib.ERROR_DEVICE,
    "NSAJIT_ERROR_CACHE": _lib.ERROR_CACHE,
    "NSAJIT_ERROR_NOT_FOUND": _lib.ERROR_NOT_FOUND,
    "NSAJIT_ERROR_INTERNAL": _lib.ERROR_INTERNAL,
    "NSAJIT_DTYPE_BF16": _lib.DTYPE_BF16,
    "NSAJIT_DTYPE_FP32": _lib.DTYPE_FP32,
    "NSAJIT_DTYPE_INT32": _lib.DTYPE_INT32,
    "NSAJIT_LSE_NATURAL_LOG": _lib.LSE_NATURAL_LOG,
}


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory):
    """name -> value printed by a C program compiled against the header."""
    require_compiler_and_header()
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "nsajit/nsajit.h"', "int main(void) {"]
    for struct, (_, fields) in STRUCTS.items():
        lines.append(f'  printf("{struct} %zu\\n", sizeof({struct}));')
        for field in fields:
            lines.append(f'  printf("{struct}.{field} %zu\\n", offsetof({struct}, {field}));')
    for name in CONSTANTS:
        lines.append(f'  printf("{name} %lld\\n", (long long)({name}));')
    lines += ["  return 0;", "}"]
    directory = tmp_path_factory.mktemp("layout")
    source, binary = directory / "layout.c", directory / "layout"
    source.write_text("\n".join(lines) + "\n")
    compiled = subprocess.run(["gcc", "-std=c11", f"-I{HEADER_DIR}", str(source), "-o", str(binary)],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    output = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    return {name: int(value) for name, value in (line.split() for line in output.splitlines())}


@pytest.mark.parametrize("struct", sorted(STRUCTS))
def test_struct_size_and_field_offsets_match_the_header(c_layout, struct):
    mirror, fields = STRUCTS[struct]
    assert [name for name, _ in mirror._fields_] == fields, "field order differs from the header"
    assert ctypes.sizeof(mirror) == c_layout[struct]
    for field in fields:
        assert getattr(mirror, field).offset == c_layout[f"{struct}.{field}"], field


def test_constants_match_the_header(c_layout):
    for name, value in CONSTANTS.items():
        assert value == c_layout[name], name


def test_header_declares_nothing_the_mirrors_miss():
    """A new field or function in nsajit.h must reach _lib.py: compare declared names."""
    require_compiler_and_header()
    text = (HEADER_DIR / "nsajit" / "nsajit.h").read_text()
    import re

    functions = set(re.findall(r"\b(nsajit_\w+)\s*\(", text))
    mirrored = {"nsajit_default_options", "nsajit_create", "nsajit_destroy", "nsajit_last_error",
                "nsajit_version", "nsajit_sparse_mla_fwd", "nsajit_topk_select", "nsajit_compile_count"}
    assert functions == mirrored
