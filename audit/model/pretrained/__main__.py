"""`python -m audit.model.pretrained efficientnet-lite0 [--out DIR]`: build (or reuse) the converted
network and print where it is."""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from audit.errors import EXIT_BAD_INPUT, UserError
from audit.model.pretrained.models import CLASSES_FILE, VARIANTS, current_umask, ensure_model


def copy_into(files: list[Path], out: Path) -> list[Path]:
    """Copy files into `out`, each through a temporary file and a rename. A file of the same name
    that differs is not ours to overwrite: refused before anything is copied."""
    targets = [out / f.name for f in files]
    for src, dst in zip(files, targets):
        if dst.exists() and not (dst.is_file() and filecmp.cmp(src, dst, shallow=False)):
            raise UserError(f"--out: {dst} already exists and differs; remove it or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    for src, dst in zip(files, targets):
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}-", dir=out)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.model.pretrained",
                                     description="Convert an ImageNet network shipped as a PyTorch wheel to Keras "
                                                 "(cached; PyTorch is not needed).")
    parser.add_argument("network", choices=sorted(VARIANTS))
    parser.add_argument("--out", type=Path, help="also copy the .keras and imagenet_classes.txt into this folder")
    args = parser.parse_args(argv)
    try:
        path = ensure_model(args.network)
        files = [path, path.with_name(CLASSES_FILE)]
        if args.out is not None:
            files = copy_into(files, args.out)
    except UserError as exc:
        print(f"audit.model.pretrained: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"model: {files[0]}\nclasses_file: {files[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
