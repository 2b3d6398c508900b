"""`audit dream` config: the same `model:` section as an audit, a `dream:` section, `report:`.

    dream:
      input: photo.png            # an image file, or `noise`
      size: [256, 256]            # optional: resize the input / size of the noise
      objective:                  # terms that are summed, each with an optional weight
        - {layer: conv3}                      # the layer's mean activation
        - {layer: conv4, channels: [2, 7]}    # chosen channels
        - {layer: conv4, neuron: 5, weight: 0.5}
        - {class: dumbbell}                   # a class logit
      guide: {image: cat.png, layer: conv4, top_k: 8, by: mean}   # dream only what the guide fires
      octaves: 4
      octave_scale: 1.4
      steps: 32
      step_size: 0.02
      smoothing: 0.0
      jitter: 8
      seed: 0

CLI flags build the same dict (paths relative to the working folder) and go through the
same validation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from audit.config.model import ModelConfig, parse_model
from audit.config.report import ReportConfig
from audit.config.visualize import DreamSettings, dream_settings
from audit.config.reader import Section, check_class_names, read_yaml
from audit.errors import UserError
from audit.config.yaml_input import flag_numbers, short_repr


@dataclass(frozen=True)
class DreamTerm:
    kind: str            # layer | channels | neuron | class
    weight: float
    layer: str | None = None
    channels: tuple[int, ...] = ()
    neuron: int | None = None
    class_name: str | None = None


@dataclass(frozen=True)
class GuideConfig:
    image: Path
    layer: str
    top_k: int
    by: str = "mean"  # rank channels by their mean or max activation on the guide


@dataclass(frozen=True)
class DreamConfig:
    source: Path
    sha256: str
    raw: dict
    model: ModelConfig
    input: Path | None  # None = noise
    size: tuple[int, int] | None
    terms: tuple[DreamTerm, ...]
    guide: GuideConfig | None
    settings: DreamSettings
    report: ReportConfig

    def inputs(self) -> list[tuple[str, Path | None]]:
        """(key, path) of everything `audit dream` reads, which its report folder must stay apart from."""
        from audit.config.model import model_inputs

        return [*model_inputs(self.model), ("dream.input", self.input),
                ("dream.guide.image", self.guide.image if self.guide else None)]


def _term(sec: Section) -> DreamTerm:
    weight = float(sec.get("weight", (int, float), 1.0))
    cls = sec.get("class", (str, int))
    layer = sec.get("layer", str)
    chans = sec.get("channels", list, fix="list channel numbers, e.g. [3, 17]")
    unit = sec.get("neuron", int, check=lambda v: v >= 0, fix="give a channel number >= 0")
    sec.finish()
    if cls is not None:
        if layer is not None:
            sec.fail(sec.key("class"), "a term is either a class or a layer", "split it into two terms")
        return DreamTerm("class", weight, class_name=str(cls))
    if layer is None:
        sec.fail(sec.key("layer"), "is missing", "give `layer: NAME` (optionally channels or neuron) or `class: NAME`")
    if chans is not None and unit is not None:
        sec.fail(sec.key("channels"), "both `channels` and `neuron` are given", "keep one of them")
    if chans is not None:
        if not chans or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in chans):
            sec.fail(sec.key("channels"), f"invalid channels {short_repr(chans)}", "list channel numbers >= 0, e.g. [3, 17]")
        return DreamTerm("channels", weight, layer=layer, channels=tuple(chans))
    if unit is not None:
        return DreamTerm("neuron", weight, layer=layer, neuron=unit)
    return DreamTerm("layer", weight, layer=layer)


def parse_dream_config(file: Path, data, text: bytes) -> DreamConfig:
    top = Section(file, data, "")
    model = parse_model(top.section("model"), classes_required=False)
    sec = top.section("dream")
    raw_input = sec.get("input", str, required=True, fix="give an image path or `noise`")
    image = None if raw_input == "noise" else sec.path_value("input", must="file")
    size = sec.get("size", list, fix="write it as [height, width]")
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and 8 <= v <= 8192 for v in size)):
        sec.fail(sec.key("size"), f"invalid size {short_repr(size)}", "write it as [height, width], each from 8 to 8192")
    terms = []
    objective = sec.get("objective", list, [], fix="write a list of terms, e.g. [{layer: conv3}]")
    for i, term in enumerate(objective):
        terms.append(_term(Section(file, term, sec.key(f"objective[{i}]"))))
    guide = None
    if sec.has("guide"):
        g = sec.section("guide")
        guide = GuideConfig(image=g.path_value("image", must="file"), layer=g.get("layer", str, required=True),
                            top_k=g.get("top_k", int, 8, check=lambda v: 1 <= v <= 100_000,
                                        fix="use a whole number from 1 to 100000"),
                            by=g.get("by", str, "mean", check=lambda v: v in ("mean", "max"), fix="use `mean` or `max`"))
        g.finish()
    if not terms and guide is None:
        sec.fail(sec.key("objective"), "is empty", "add a term such as `- {layer: conv3}`, or a `guide:`")
    settings = dream_settings(sec, DreamSettings())
    sec.finish()
    rep = top.section("report")
    out = rep.get("out", str, "../reports/dream-" + file.stem)
    title = rep.get("title", str, f"DeepDream: {file.stem}")
    rep.finish()
    top.finish()
    names = [t.class_name for t in terms if t.kind == "class"]
    if names:
        if model.classes is None:
            numeric = [n for n in names if not n.isdigit()]
            if numeric:
                raise UserError(f"{file}: model.classes: a class objective names {short_repr(numeric[0])} but the model's "
                                "classes are not listed; add `classes:` or use the class index")
        else:
            check_class_names(file, model.classes, "dream.objective", [n for n in names if not n.isdigit()])
    return DreamConfig(file.resolve(), hashlib.sha256(text).hexdigest(), data, model, image,
                       tuple(size) if size else None, tuple(terms), guide, settings,
                       ReportConfig((file.parent / out).resolve(), title))


def load_dream_config(path: str | Path) -> DreamConfig:
    file, text, data = read_yaml(path)
    return parse_dream_config(file, data, text)


def add_dream_flags(parser) -> None:
    """The flags of `audit dream` that build a config (read by dream_config_from_flags below)."""
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--model", type=Path, help="a .keras/.h5 file or SavedModel folder")
    parser.add_argument("--input-range", help="pixel range the model expects, e.g. 0,255 (default 0,1)")
    parser.add_argument("--preprocessing", help="a keras.applications preprocessing name instead of --input-range")
    parser.add_argument("--classes-file", type=Path, help="class names, one per line (for --class NAME)")
    parser.add_argument("--trust-code", action="store_true", help="let Keras run code stored in the model file")
    parser.add_argument("--input", type=Path, help="image to dream on (default: random noise)")
    parser.add_argument("--layer", help="layer to dream (its mean activation, or --channels/--neuron of it)")
    parser.add_argument("--channels", help="comma-separated channel numbers of --layer")
    parser.add_argument("--neuron", type=int, help="one channel of --layer, at the centre of the feature map")
    parser.add_argument("--class", dest="class_name", help="a class name or index whose logit to dream")
    parser.add_argument("--guide", type=Path, help="guide image: dream only the --top-k channels of --layer it fires")
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--size", help="height,width of the dream (resizes the input; default its own size)")
    parser.add_argument("--by", choices=("mean", "max"), default="mean", help="rank guide channels by mean or max")
    for flag, kind in (("--octaves", int), ("--octave-scale", float), ("--steps", int), ("--step-size", float),
                       ("--smoothing", float), ("--jitter", int), ("--seed", int)):
        parser.add_argument(flag, type=kind)
    parser.add_argument("--out", type=Path, help="report folder")
    parser.add_argument("--quiet", action="store_true")


def dream_config_from_flags(args, cwd: Path) -> DreamConfig:
    """Build the config a user would have written from `audit dream` flags."""
    if not args.model:
        raise UserError("audit dream: give a CONFIG file or at least --model and --layer/--class")
    model = {"path": str(args.model), "trust_code": bool(args.trust_code)}
    if args.preprocessing:
        model["preprocessing"] = args.preprocessing
    else:
        model["input_range"] = (flag_numbers(args.input_range, float, "audit dream", "--input-range", "0,255")
                                if args.input_range else [0, 1])
    if args.guide and args.channels:
        raise UserError("audit dream: --channels and --guide both choose channels; give one of them")
    if args.guide and not args.layer:
        raise UserError("audit dream: --guide needs --layer, the layer whose channels the guide image picks; "
                        "e.g. --guide cat.png --layer conv4")
    if not args.layer and not args.class_name and not args.guide:
        raise UserError("audit dream: say what to amplify: --layer NAME (its mean activation, or --channels/"
                        "--neuron of it), --class NAME, or --guide IMAGE with --layer; e.g. --layer conv4")
    if args.classes_file:
        model["classes_file"] = str(args.classes_file)
    dream = {"input": str(args.input) if args.input else "noise"}
    if args.size:
        dream["size"] = flag_numbers(args.size, int, "audit dream", "--size", "256,256")
    terms = []
    if args.layer and not args.guide:
        term = {"layer": args.layer}
        if args.channels:
            term["channels"] = flag_numbers(args.channels, int, "audit dream", "--channels", "3,17")
        if args.neuron is not None:
            term["neuron"] = args.neuron
        terms.append(term)
    if args.class_name:
        terms.append({"class": args.class_name})
    if terms:
        dream["objective"] = terms
    if args.guide:
        dream["guide"] = {"image": str(args.guide), "layer": args.layer, "top_k": args.top_k, "by": args.by}
    for key in ("octaves", "octave_scale", "steps", "step_size", "smoothing", "jitter", "seed"):
        value = getattr(args, key)
        if value is not None:
            dream[key] = value
    what = args.class_name and f"class {args.class_name}" or args.layer or "the guide's channels"
    title = f"DeepDream of {what} on {args.input.name if args.input else 'noise'}"
    data = {"model": model, "dream": dream, "report": {"out": str(args.out or "reports/dream"), "title": title}}
    text = yaml.safe_dump(data, sort_keys=False).encode()
    source = cwd / "<command line>"
    try:
        return parse_dream_config(source, data, text)
    except UserError as exc:  # the user wrote flags, not a file: say so
        raise UserError(str(exc).replace(f"{source}: ", "audit dream: ", 1)) from None

