"""A PEP 517 / PEP 660 build backend for nsa-jit that needs nothing but the standard library.

Why not setuptools: `pip install ./python` must work offline. With build isolation pip would
have to download setuptools; without it, setuptools older than 70.1 still needs the separate
`wheel` package for bdist_wheel, which many Python installs lack. The package is pure Python
(ctypes over libnsajit.so), so writing the wheel directly is short and has no such failure.

A libnsajit.so* copied into nsa_jit/ before building goes into the wheel, which then gets
this platform's tag instead of py3-none-any.
"""

import base64
import hashlib
import io
import os
import re
import sysconfig
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the python/ folder
PACKAGE = "nsa_jit"
NAME = "nsa-jit"
SUMMARY = "JIT-compiled, autotuned DeepSeek sparse attention (drop-in flash_mla_sparse_fwd) over libnsajit"
REQUIRES_PYTHON = ">=3.8"
EXTRAS = {"torch": ["torch"], "test": ["pytest"]}


def _version():
    text = (ROOT / PACKAGE / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not match:
        raise RuntimeError(f"no __version__ in {ROOT / PACKAGE / '__init__.py'}")
    return match.group(1)


def _package_files():
    """(path in wheel, path on disk): the package's .py files and any bundled library."""
    files = []
    for path in sorted((ROOT / PACKAGE).iterdir()):
        if path.suffix == ".py" or path.name.startswith("libnsajit.so"):
            files.append((f"{PACKAGE}/{path.name}", path))
    return files


def _bundles_library(files):
    return any(name.rsplit("/", 1)[-1].startswith("libnsajit.so") for name, _ in files)


def _tag(files):
    if not _bundles_library(files):
        return "py3-none-any"
    return "py3-none-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")


def _metadata():
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {_version()}",
        f"Summary: {SUMMARY}",
        f"Requires-Python: {REQUIRES_PYTHON}",
    ]
    for extra, requirements in EXTRAS.items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {requirement}; extra == "{extra}"' for requirement in requirements]
    readme = ROOT / "README.md"
    if readme.exists():
        lines.append("Description-Content-Type: text/markdown")
        return "\n".join(lines) + "\n\n" + readme.read_text()
    return "\n".join(lines) + "\n"


def _dist_info():
    return f"{PACKAGE}-{_version()}.dist-info"


def _wheel_name(files):
    return f"{PACKAGE}-{_version()}-{_tag(files)}.whl"


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(directory, entries, files):
    """entries: (name in wheel, bytes); adds WHEEL, METADATA and RECORD."""
    dist_info = _dist_info()
    purelib = "false" if _bundles_library(files) else "true"
    entries = list(entries) + [
        (f"{dist_info}/METADATA", _metadata().encode()),
        (f"{dist_info}/WHEEL", (
            f"Wheel-Version: 1.0\nGenerator: nsa_jit_build\nRoot-Is-Purelib: {purelib}\nTag: {_tag(files)}\n").encode()),
        (f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode()),
    ]
    record = [_record_line(name, data) for name, data in entries] + [f"{dist_info}/RECORD,,"]
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    wheel = Path(directory) / _wheel_name(files)
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".so") or ".so." in name else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel.name


# ---- PEP 517 ----------------------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = Path(metadata_directory) / _dist_info()
    target.mkdir(parents=True, exist_ok=True)
    (target / "METADATA").write_text(_metadata())
    return target.name


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = _package_files()
    return _write_wheel(wheel_directory, [(name, path.read_bytes()) for name, path in files], files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a .pth file that puts this source folder on sys.path."""
    pth = (str(ROOT) + os.linesep).encode()
    return _write_wheel(wheel_directory, [(f"__editable__.{PACKAGE}.pth", pth)], [])


def build_sdist(sdist_directory, config_settings=None):
    base = f"{PACKAGE}-{_version()}"
    archive_path = Path(sdist_directory) / f"{base}.tar.gz"
    with tarfile.open(archive_path, "w:gz") as archive:
        for path in sorted(ROOT.rglob("*")):
            relative = path.relative_to(ROOT)
            if path.is_dir() or "__pycache__" in relative.parts or path.name.startswith("libnsajit.so"):
                continue
            archive.add(path, arcname=f"{base}/{relative.as_posix()}")
        pkg_info = _metadata().encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
    return archive_path.name
