"""Reading one YAML mapping of a config: typed values, paths relative to the config file, unknown
keys refused with the closest known one. Every problem is a `UserError` naming the file, the key
path and the fix. The audit config (config.py) and the dream config (dream_config.py) are both read
with it."""

from __future__ import annotations

import collections
import difflib
import math
from pathlib import Path
from typing import Any

from audit.errors import UserError
from audit.config.yaml_input import parse_yaml, short_repr


class Section:
    """Reads one mapping of the YAML, remembering which keys were used."""

    def __init__(self, file: Path, data: Any, path: str):
        self.file, self.path = file, path
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail(path or "(top level)", f"must be a mapping, got {type(data).__name__}",
                      "write it as `key: value` lines")
        self.data, self.used = data, set()

    def fail(self, key: str, problem: str, fix: str):
        raise UserError(f"{self.file}: {key}: {problem}; {fix}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, kind, default=None, required: bool = False, check=None, fix: str = ""):
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                self.fail(self.key(name), "is missing", fix or f"add `{name}:` to the config")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if bool not in kinds and isinstance(value, bool) or not isinstance(value, kinds):
            want = " or ".join(k.__name__ for k in kinds)
            self.fail(self.key(name), f"must be {want}, got {type(value).__name__} {short_repr(value)}",
                      fix or "fix its type")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(self.key(name), f"must be a finite number, got {short_repr(value)}", fix or "give a number")
        if check is not None and not check(value):
            self.fail(self.key(name), f"invalid value {short_repr(value)}", fix)
        return value

    def section(self, name: str) -> "Section":
        self.used.add(name)
        return Section(self.file, self.data.get(name), self.key(name))

    def path_value(self, name: str, required: bool = True, must: str = "exist") -> Path | None:
        raw = self.get(name, str, required=required, fix=f"give `{name}:` a path relative to the config file")
        if raw is None:
            return None
        p = (self.file.parent / raw).resolve()
        if not p.exists():
            self.fail(self.key(name), f"{raw} does not exist (resolved to {p})",
                      build_command(p) or "fix the path; paths are relative to the config file")
        if must == "dir" and not p.is_dir():
            self.fail(self.key(name), f"{raw} is not a folder (resolved to {p})",
                      "point it at a folder of example images")
        if must == "dir":
            from audit.images import list_images

            try:  # a FIFO or device named like an image would hang the run when read
                list_images(p, self.key(name))
            except UserError as exc:
                raise UserError(f"{self.file}: {exc}") from None
        if must == "file" and not p.is_file():
            self.fail(self.key(name), f"{raw} is not a regular file (resolved to {p})", "give a file")
        return p

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                close = difflib.get_close_matches(str(name), [k for k in self.used], n=1)
                hint = f"did you mean `{close[0]}`?" if close else f"allowed keys: {', '.join(sorted(self.used))}"
                self.fail(self.key(str(name)), "unknown key", hint)


# Folders of a checkout that a command builds (converted networks, drawn demo data): a path into one
# that does not exist yet is not a typo but a step not taken, so the error names the step.
DERIVED_ASSETS = (  # (folder under the checkout, make target, what it does)
    (".cache/imagenet", "demo-imagenet", "it converts the network and draws the demo data"),
    (".cache/demo_imagenet_data", "demo-imagenet", "it converts the network and draws the demo data"),
    (".cache/models", "imagenet-models", "it converts the ImageNet networks"),
)
MAX_MAKEFILE_BYTES = 1 << 20


def build_command(path: Path) -> str | None:
    """The fix for a missing `path` that lies in a derived-asset folder of a checkout whose Makefile has
    the target that builds it: run `make TARGET` first. None otherwise (a user's own `.cache/` is not ours)."""
    parts = path.parts
    for folder, target, what in DERIVED_ASSETS:
        sub = Path(folder).parts
        for i in range(1, len(parts) - len(sub) + 1):
            if parts[i:i + len(sub)] == sub and _makefile_has(Path(*parts[:i]) / "Makefile", target):
                return f"run `make {target}` first ({what})"
    return None


def _makefile_has(makefile: Path, target: str) -> bool:
    if not makefile.is_file():  # not a FIFO or device either: reading one would hang
        return False
    try:
        with open(makefile, "rb") as fh:
            text = fh.read(MAX_MAKEFILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    return any(line.startswith(f"{target}:") for line in text.splitlines())


def within(low, high):
    return lambda v: low <= v <= high


def name_list(sec: Section, name: str, fix: str) -> tuple[str, ...] | None:
    value = sec.get(name, list, fix=fix)
    if value is None:
        return None
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        sec.fail(sec.key(name), "must be a list of names", fix)
    names = tuple(str(v) for v in value)
    repeated = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if repeated:
        sec.fail(sec.key(name), f"{short_repr(repeated[0])} is listed twice", "list each name once")
    return names


def names_or_keyword(sec: Section, name: str, keyword: str, what: str) -> tuple[str, ...] | None:
    """`keyword` (e.g. `all`, `auto`) -> None, or a list of names."""
    fix = f"write `{keyword}` or a list of {what}"
    value = sec.get(name, (str, list), default=keyword, fix=fix)
    if isinstance(value, str):
        if value != keyword:
            sec.fail(sec.key(name), f"invalid value {short_repr(value)}", fix)
        return None
    return name_list(sec, name, fix)


def optional_number(sec: Section, name: str, default: float | None, check, fix: str) -> float | None:
    if sec.has(name) and sec.data[name] is None:
        sec.used.add(name)
        return None
    value = sec.get(name, (int, float), default, check=check, fix=fix)
    return None if value is None else float(value)


MAX_CONFIG_BYTES = 16 * 2**20


def read_yaml(path: str | Path) -> tuple[Path, bytes, Any]:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{file}: config file not found; check the path")
    if file.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{file}: {file.stat().st_size / 2**20:.0f} MB is not a config file; give the YAML config")
    text = file.read_bytes()
    return file, text, parse_yaml(file, text)


def read_class_names(path: Path) -> tuple[str, ...]:
    """One class name per non-empty line (OSError / UnicodeDecodeError for the caller to word)."""
    # utf-8-sig: a byte-order mark (Windows editors) must not become part of the first name
    return tuple(line.strip() for line in Path(path).read_text(encoding="utf-8-sig").splitlines() if line.strip())


def check_class_names(file: Path, classes: tuple[str, ...], key: str, names) -> None:
    for n in names:
        if n not in classes:
            close = difflib.get_close_matches(n, classes, n=1)
            hint = f"did you mean `{close[0]}`?" if close else "use names from model.classes"
            raise UserError(f"{file}: {key}: unknown class {short_repr(n)}; {hint}")
