"""`audit init MODEL [--probes DIR]`: a starter config a new user can run at once.

Classes come from `--classes-file` (the model's names in output order; the probe sub-folders may
then be any subset of them), else from the probe sub-folders (the order
keras.utils.image_dataset_from_directory gives them: sorted names) when their number matches the
model's outputs, else from the output count; the pixel range from the model's own
Rescaling/Normalization layer when it has one. The concept bank starts with the watermark
concept shipped with the demo (so the file runs as written) and a commented entry showing
examples, cutouts and allowed_in.

Everything taken from the model or the file system (a layer name, folder names, paths) is written
quoted and escaped, comments included: a name is data, and a line break in it must not start a
key of the config (`rescaling\nexecution: {backend: ray, address: ...}`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from audit.config.reader import read_class_names
from audit.errors import UserError
from audit.inputs.probes import folder_class

DEMO_CONCEPTS = Path(__file__).resolve().parents[1] / "demo" / "assets" / "concepts"  # audit/demo/...
INLINE_CLASSES = 50  # more classes than this go to a classes file


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return str(path)


# what json.dumps leaves raw but a YAML reader takes as a line break (\x85, \u2028, \u2029: one would end a
# comment) or refuses as a character (DEL, C1 controls, lone surrogates, U+FFFE/U+FFFF)
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _yaml_str(s: str) -> str:
    """A double-quoted scalar that reads back as `s` and stays on its line, whatever `s` holds."""
    import json

    text = json.dumps(s, ensure_ascii=False)  # a JSON string is a valid YAML scalar; it escapes \n and other C0
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _comment(s: str) -> str:
    """Text for a YAML comment: escaped like _yaml_str, so no line break can end the comment."""
    return _yaml_str(s)[1:-1]


def _read_names(path: Path, n_out: int) -> list[str]:
    try:
        names = list(read_class_names(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--classes-file: {path} cannot be read ({type(exc).__name__}); give a UTF-8 text file, "
                        "one class name per line") from None
    if len(names) != n_out:
        raise UserError(f"--classes-file: {path} has {len(names)} names but the model has {n_out} outputs; give one "
                        "name per output, in output order")
    return names


def starter_config(model_path: Path, out: Path, probes: Path | None, classes_file: Path | None = None
                   ) -> tuple[str, dict]:
    """(YAML text, what was found) for a Keras model file."""
    from audit.config.model import ModelConfig
    from audit.model.input_range import range_from_layers
    from audit.model.load import load_keras  # the same safe loading as `audit run`

    keras_model = load_keras(ModelConfig(model_path, None, None, None, None, False))
    n_out = int(keras_model.outputs[0].shape[-1])
    found = {"outputs": n_out, "classes_from": "output count", "range_from": None}
    subdirs = [] if probes is None else sorted(
        p.name for p in Path(probes).iterdir() if p.is_dir() and not p.name.startswith("."))
    classes, found["classes_from"] = _classes(n_out, probes, subdirs, classes_file)
    rng = range_from_layers(keras_model)
    base = out.parent.resolve()
    lines = ["# Starter config written by `audit init`: run `audit validate` and `audit run` on it, then",
             "# replace the demo concept with your own (see the commented entry at the bottom).",
             "model:", f"  path: {_yaml_str(_rel(model_path.resolve(), base))}"]
    lines += _class_lines(classes, classes_file, bool(subdirs), out, base, found)
    if rng is not None:
        (lo, hi), layer = rng
        found["range_from"] = layer
        lines.append(f"  input_range: [{lo:g}, {hi:g}]  # read from the model's layer {_yaml_str(layer)}")
    else:
        lines.append("  input_range: [0, 1]  # CHECK: the pixel values your model was trained on ([0, 255]? [-1, 1]?)")
    lines += _concept_lines(probes, base) + [
        "report:", f"  out: {_yaml_str('reports/' + out.stem)}", f"  title: {_yaml_str('Audit of ' + model_path.name)}", ""]
    return "\n".join(lines), found


def _classes(n_out: int, probes: Path | None, subdirs: list[str], classes_file: Path | None) -> tuple[list[str], str]:
    """(class names, where they came from): --classes-file, else the probe sub-folders when there is one
    per output, else the output indices."""
    if classes_file is not None:
        classes = _read_names(classes_file, n_out)
        unknown = [d for d in subdirs if folder_class(d, tuple(classes)) is None]
        if unknown:
            raise UserError(f"--probes: sub-folder {unknown[0]!r} of {probes} is not a class in {classes_file}; name "
                            "each sub-folder after one of the model's classes, or by its class index")
        return classes, str(classes_file)
    if subdirs and len(subdirs) == n_out:
        return subdirs, f"the {n_out} sub-folders of {probes}, sorted"
    if subdirs:
        raise UserError(f"--probes: {probes} has {len(subdirs)} class sub-folders but the model has {n_out} "
                        "outputs; pass --classes-file with the model's class names (the sub-folders may then be "
                        "any of them), or give one sub-folder per class, or a flat folder of images")
    return [str(i) for i in range(n_out)], "output count"


def _class_lines(classes: list[str], classes_file: Path | None, from_folders: bool, out: Path, base: Path,
                 found: dict) -> list[str]:
    """The `classes_file:` or `classes:` line; past INLINE_CLASSES, a classes file to fill in (found["classes_file"])."""
    n_out = found["outputs"]
    if classes_file is not None:
        return [f"  classes_file: {_yaml_str(_rel(Path(classes_file).resolve(), base))}  # {n_out} names, "
                "one per line in output order"]
    if len(classes) <= INLINE_CLASSES:
        lines = [f"  classes: [{', '.join(_yaml_str(c) for c in classes)}]  # from {_comment(found['classes_from'])}"]
        if from_folders:  # named after sorted folders: the order is a guess
            lines.append("  # ^ CHECK: the order of the model's outputs (image_dataset_from_directory sorts folder "
                         "names); `audit run` stops if the labelled probes say otherwise")
        return lines
    classes_file = out.with_name(out.stem + "_classes.txt")
    if classes_file.exists():
        raise UserError(f"audit init: {classes_file} exists; choose another --out (nothing is overwritten)")
    found["classes_file"] = classes_file
    return [f"  classes_file: {_yaml_str(classes_file.name)}  # one name per line, from "
            f"{_comment(found['classes_from'])}: put your class names there"]


def _concept_lines(probes: Path | None, base: Path) -> list[str]:
    """visualize: and concepts: (the demo's watermark concept, so the file runs as written)."""
    lines = ["visualize:", "  restarts: 8", "  steps: 128", "  seed: 0",
             "concepts:",
             f"  negatives: {_yaml_str(_rel(DEMO_CONCEPTS / '_random', base))}  # unrelated images, none showing "
             "a concept: use ~100 of your own",
             ]
    if probes is not None:
        lines.append(f"  probes: {_yaml_str(_rel(Path(probes).resolve(), base))}  # images the causal test pastes "
                     "concepts onto")
    else:
        lines.append("  # probes: val_images/   # a sample of your validation set (one sub-folder per class, or flat):")
        lines.append("  #                        # without probes the verdict rests on observational evidence only")
    return lines + [
        "  bank:",
        f"    watermark: {{examples: {_yaml_str(_rel(DEMO_CONCEPTS / 'watermark', base))}, allowed_in: []}}"
        "  # the demo's text watermark: a real check",
        "    #   (on EfficientNet-Lite0 it raised text-bearing classes: street sign, shopping basket, website;",
        "    #    list the classes where text belongs in allowed_in, or replace it with your own concepts)",
        "    # arm:                          # a concept: a folder of images that show it (20+)",
        "    #   examples: concepts/arm",
        "    #   cutouts: concepts/arm_cutouts   # optional RGBA PNGs of the concept alone; without them",
        "    #                                   # the audit cuts the concept out of the examples itself",
        "    #   allowed_in: [person]          # classes where the concept belongs ([] = nowhere)"]


def write_starter(model_path: Path, out: Path, probes: Path | None, classes_file: Path | None = None) -> dict:
    if out.exists():
        raise UserError(f"audit init: {out} exists; choose another --out (nothing is overwritten)")
    if not model_path.is_file():
        raise UserError(f"audit init: {model_path} is not a model file; give a .keras or .h5 file")
    if probes is not None and not Path(probes).is_dir():
        raise UserError(f"--probes: {probes} is not a folder")
    if classes_file is not None and not Path(classes_file).is_file():
        raise UserError(f"--classes-file: {classes_file} is not a file; give a text file, one class name per line")
    text, found = starter_config(model_path, out, probes, classes_file)
    from audit.report.folder import write_text_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    if "classes_file" in found:
        write_text_atomic(found["classes_file"], "\n".join(str(i) for i in range(found["outputs"])) + "\n")
    write_text_atomic(out, text)
    return found
