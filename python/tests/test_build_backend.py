"""The in-tree build backend makes an installable wheel offline, and a library bundled next to
the package is found there after installation."""

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import nsa_jit

PYTHON_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON_DIR / "build_backend"))
import nsa_jit_build  # noqa: E402


def test_wheel_holds_the_package_with_a_valid_record(tmp_path):
    name = nsa_jit_build.build_wheel(str(tmp_path))
    assert name == f"nsa_jit-{nsa_jit.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / name) as wheel:
        names = set(wheel.namelist())
        assert {"nsa_jit/__init__.py", "nsa_jit/_lib.py", "nsa_jit/_tensors.py", "nsa_jit/api.py"} <= names
        dist_info = f"nsa_jit-{nsa_jit.__version__}.dist-info"
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        assert f"Version: {nsa_jit.__version__}" in metadata and "Name: nsa-jit" in metadata
        record = wheel.read(f"{dist_info}/RECORD").decode().splitlines()
        assert len(record) == len(names)
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if path.endswith("RECORD"):
                continue
            data = wheel.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), path


def test_pip_installs_offline_and_finds_a_bundled_library(tmp_path, fake_library_path):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip(f"{sys.executable} has no pip")
    source = tmp_path / "src"
    shutil.copytree(PYTHON_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copy(fake_library_path, source / "nsa_jit" / "libnsajit.so")
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (target / "nsa_jit" / "libnsajit.so").exists()
    env = {key: value for key, value in os.environ.items() if key != "NSA_JIT_LIBRARY"}
    env["PYTHONPATH"] = str(target)
    probe = subprocess.run(
        [sys.executable, "-c", "import nsa_jit; print(nsa_jit.library_version()); print(nsa_jit.library_path())"],
        capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["0.1.0-fake", str(target / "nsa_jit" / "libnsajit.so")]
