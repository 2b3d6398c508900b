"""Checks on a model file before any loader reads it (no TensorFlow needed, so `audit validate`
runs them too).

* A SavedModel folder is a TensorFlow program: its graph can read and write files, and Keras'
  safe mode does not apply to it. It is refused unless the config says `trust_code: true`.
* A `.keras` file is a zip archive and an `.h5` file can hold compressed datasets: a small file
  can inflate to gigabytes in memory when loaded. Sizes are checked before loading.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from audit.errors import UserError

MAX_CONFIG_BYTES = 64 * 2**20   # config.json / metadata.json of real models: kilobytes to a few MB
EXPANSION_FLOOR = 256 * 2**20   # below this, any compression ratio is harmless
MAX_EXPANSION = 100             # real weights compress about 1.1x; zeros-only bombs 1000x
MAX_MEMBERS = 10_000


def check_model_path(path: Path, trust_code: bool, key: str = "model.path") -> None:
    """Raise UserError (one line, naming `key`) for a model path that must not be loaded."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        if not (path / "saved_model.pb").is_file():
            raise UserError(f"{key}: {path} is a folder without saved_model.pb; give a .keras or .h5 file or a "
                            "SavedModel folder")
        if not trust_code:
            raise UserError(f"{key}: {path.name} is a SavedModel folder, which is a TensorFlow program (its graph "
                            "can read and write files) that safe mode cannot check; re-save the model as .keras, "
                            "or set `model.trust_code: true` only if you trust whoever made it")
        return
    if not stat.S_ISREG(mode):
        raise UserError(f"{key}: {path} is not a regular file (a FIFO or device?); give a .keras or .h5 file")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise UserError(f"{key}: {path.name} has an unknown format; give a .keras or .h5 file or a SavedModel folder")
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise UserError(f"{key}: cannot load {path}: not a .keras archive (a .keras file is a zip); "
                            "give a Keras 3 .keras, a legacy .h5, or a SavedModel folder")
        _check_zip(path, key)
    elif suffix in (".h5", ".hdf5"):
        with open(path, "rb") as fh:
            _check_h5(fh, path.stat().st_size, f"{key}: {path.name}")


def _bomb(key: str, what: str, inflated: int, stored: int) -> UserError:
    return UserError(f"{key}: {what} inflates from {stored / 2**20:.1f} MB to {inflated / 2**20:.0f} MB when "
                     "loaded (a compression bomb?); give the model as saved by Keras")


def _check_zip(path: Path, key: str) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # not a zip at all: the Keras loader says so
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise UserError(f"{key}: {path.name} holds {len(members)} files; a .keras archive holds a few")
        for info in members:
            where = f"{path.name}/{info.filename}"
            if info.filename in ("config.json", "metadata.json") and info.file_size > MAX_CONFIG_BYTES:
                raise _bomb(key, where, info.file_size, info.compress_size)
            if info.file_size > EXPANSION_FLOOR and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
                raise _bomb(key, where, info.file_size, info.compress_size)
        # Keras extracts the whole archive: members each under the floor can still add up to a bomb
        inflated, stored = sum(i.file_size for i in members), sum(i.compress_size for i in members)
        if inflated > EXPANSION_FLOOR and inflated > MAX_EXPANSION * max(stored, 1):
            raise _bomb(key, f"{path.name} (all {len(members)} files together)", inflated, stored)
        for info in members:
            if info.filename.endswith(".h5"):
                try:
                    with archive.open(info) as fh:
                        _check_h5(fh, info.file_size, f"{key}: {path.name}/{info.filename}")
                except (zipfile.BadZipFile, OSError, RuntimeError, ValueError):
                    continue  # a damaged member: the Keras loader says so


def _check_h5(fh, stored: int, where: str) -> None:
    """Compressed HDF5 datasets: their in-memory size against what the file stores."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with Keras
        return
    total = 0

    def visit(_, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(obj.size) * obj.dtype.itemsize

    try:
        with h5py.File(fh, "r") as f:
            f.visititems(visit)
    except (OSError, ValueError, RuntimeError, TypeError):
        return  # not HDF5: the Keras loader says so
    if total > EXPANSION_FLOOR and total > MAX_EXPANSION * max(stored, 1):
        key, _, name = where.partition(": ")
        raise _bomb(key, name or where, total, stored)
