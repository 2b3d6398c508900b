"""Command line: `audit run CONFIG`, `audit validate CONFIG`, `audit dream [CONFIG] [flags]`.

Exit codes: 0 pass (or warn), 1 gate failed, 2 bad config or input, 3 internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from audit import __version__
from audit.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, UserError


def _quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up chatter (oneDNN, absl notices) silenced: it would
    bury the one line a user needs to read. Python-level errors still surface normally."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or os.environ.get("AUDIT_DEBUG"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401  (imports tensorflow too)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cmd_validate(args) -> int:
    from audit.config import load_config

    from audit.folder_checks import check_folders

    cfg = load_config(args.config)
    try:
        found = check_folders(cfg)
    except UserError as exc:
        raise UserError(f"{cfg.source}: {exc}") from None
    classes = f"{len(cfg.model.classes)} classes" if cfg.model.classes is not None else "classes from the model"
    probes = found["probes"]
    probe_txt = ("no probes: observational evidence only" if probes is None else
                 f"{probes['count']} probes" + (f" in {probes['classes']} class folders" if probes["classes"] else ""))
    print(f"{args.config}: ok ({classes}, {len(cfg.concepts.bank)} concepts, {probe_txt})")
    return 0


def _cmd_run(args) -> int:
    from audit.config import load_config

    from audit import ci

    cfg = load_config(args.config)  # validate before paying for TensorFlow's import
    _quiet_tensorflow()
    from audit.pipeline import run_audit

    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        result, code, out = run_audit(cfg, out=args.out, progress=not args.no_progress and not args.quiet,
                                      log=log, baseline=args.baseline)
    except UserError:
        raise
    except Exception as exc:
        try:
            ci.write_crash_report(args.out or cfg.report.out, exc)
        except Exception:  # noqa: BLE001 - the crash itself is what must be reported
            pass
        raise
    from audit.history import record_run

    history = "off"
    if not args.no_history:
        try:
            history = record_run(result, out)
        except OSError as exc:  # the history is a convenience: it never changes the verdict
            history = f"not updated ({exc})"
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in ci.github_annotations(result):
            print(line)
    ci.append_step_summary((out / "summary.md").read_text())
    s = result["summary"]
    print(f"{result['verdict'].upper()}: {s['fail']} fail, {s['warn']} warn, {s['pass']} pass, "
          f"{s['allowed']} allowed" + (f" ({'; '.join(result['verdict_reasons'])})" if result["verdict_reasons"] else ""))
    from audit.report.decisive import decisive_text

    for f in result["findings"][:10]:
        print(f"  {f['level']}: concept '{f['concept']}' in class '{f['class_name']}' ({decisive_text(f)})")
    evidence = result.get("evidence") or {"mode": "causal"}
    if evidence["mode"] != "causal":
        print(f"evidence: {evidence['statement']}")
    base = result["baseline"]
    if base["state"] != "none":
        print(f"baseline: {base['state']}: {base['reason']}")
        for f in base.get("new_findings", []):
            print(f"  new finding since baseline: {f['concept']} in {f['class_name']} ({f['level']})")
        for r in base.get("regressions", []):
            print(f"  regression: {r['metric']} of {r['class_name']} x {r['concept']} rose "
                  f"{r['baseline']:.2f} -> {r['candidate']:.2f}")
    print(f"report: {out / 'index.html'}  (history: {history})")
    return code


def _cmd_dream(args) -> int:
    from audit.dream_config import dream_config_from_flags, load_dream_config

    cfg = load_dream_config(args.config) if args.config else dream_config_from_flags(args, Path.cwd())
    _quiet_tensorflow()
    from audit.dream_run import run_dream

    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        _, out = run_dream(cfg, out=args.out if args.config else None, progress=not args.quiet, log=log)
    except UserError as exc:
        source = str(args.config) if args.config else "audit dream"
        raise UserError(str(exc) if str(exc).startswith(source) else f"{source}: {exc}") from None
    print(f"dream: {out / 'images' / 'dream.png'}")
    print(f"report: {out / 'index.html'}")
    return 0


def _cmd_diff(args) -> int:
    from audit.baseline import load_baseline
    from audit.outputs import write_text_atomic
    from audit.report.diff import diff_record, render_html, render_markdown

    results = []
    for path in (args.baseline, args.candidate):
        state, data, reason = load_baseline(path)
        if data is None:
            raise UserError(f"audit diff: {reason}; give two audit.json files written by `audit run`")
        results.append(data)
    record = diff_record(*results)
    markdown = render_markdown(record)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "diff.md", markdown)
        write_text_atomic(args.out / "diff.html", render_html(record))
        print(f"diff: {args.out / 'diff.html'}")
    else:
        print(markdown, end="")
    return 0


def _cmd_init(args) -> int:
    _quiet_tensorflow()
    from audit.init_config import write_starter

    found = write_starter(args.model, args.out, args.probes)
    rng = f"input range read from `{found['range_from']}`" if found["range_from"] else \
        "input range NOT found in the model: check `input_range`"
    print(f"wrote {args.out}: {found['outputs']} classes (from {found['classes_from']}), {rng}")
    print(f"next: audit validate {args.out} && audit run {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit", description="Find spurious concepts in Keras image classifiers.")
    parser.add_argument("--version", action="version", version=f"audit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="visualize every class, score concepts, gate, write the report")
    run.add_argument("config", type=Path)
    run.add_argument("--out", type=Path, help="report folder (default: report.out from the config)")
    run.add_argument("--baseline", type=Path, help="audit.json of the last released model (overrides gate.baseline)")
    run.add_argument("--quiet", action="store_true", help="print only the verdict and the report path")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--no-history", action="store_true",
                     help="do not add this run to history.json/index.html in the folder above the report")
    run.set_defaults(func=_cmd_run)
    dream = sub.add_parser("dream", help="DeepDream: amplify what a layer, channels or a class see in an image",
                           description="Give a CONFIG with a `dream:` section, or flags that build one.")
    dream.add_argument("config", type=Path, nargs="?")
    dream.add_argument("--model", type=Path, help="a .keras/.h5 file or SavedModel folder")
    dream.add_argument("--input-range", help="pixel range the model expects, e.g. 0,255 (default 0,1)")
    dream.add_argument("--preprocessing", help="a keras.applications preprocessing name instead of --input-range")
    dream.add_argument("--classes-file", type=Path, help="class names, one per line (for --class NAME)")
    dream.add_argument("--trust-code", action="store_true", help="let Keras run code stored in the model file")
    dream.add_argument("--input", type=Path, help="image to dream on (default: random noise)")
    dream.add_argument("--layer", help="layer to dream (its mean activation, or --channels/--neuron of it)")
    dream.add_argument("--channels", help="comma-separated channel numbers of --layer")
    dream.add_argument("--neuron", type=int, help="one channel of --layer, at the centre of the feature map")
    dream.add_argument("--class", dest="class_name", help="a class name or index whose logit to dream")
    dream.add_argument("--guide", type=Path, help="guide image: dream only the --top-k channels of --layer it fires")
    dream.add_argument("--top-k", type=int, default=8)
    dream.add_argument("--size", help="height,width of the dream (resizes the input; default its own size)")
    dream.add_argument("--by", choices=("mean", "max"), default="mean", help="rank guide channels by mean or max")
    for flag, kind in (("--octaves", int), ("--octave-scale", float), ("--steps", int), ("--step-size", float),
                       ("--smoothing", float), ("--jitter", int), ("--seed", int)):
        dream.add_argument(flag, type=kind)
    dream.add_argument("--out", type=Path, help="report folder")
    dream.add_argument("--quiet", action="store_true")
    dream.set_defaults(func=_cmd_dream)
    diff = sub.add_parser("diff", help="compare two audits: new and resolved findings, score changes")
    diff.add_argument("baseline", type=Path, help="audit.json of the earlier (released) model")
    diff.add_argument("candidate", type=Path, help="audit.json of the new model")
    diff.add_argument("--out", type=Path, help="write diff.md and diff.html here (default: Markdown to stdout)")
    diff.set_defaults(func=_cmd_diff)
    init = sub.add_parser("init", help="write a starter config for a model")
    init.add_argument("model", type=Path, help="a .keras or .h5 model file")
    init.add_argument("--probes", type=Path, help="a folder of probe images (one sub-folder per class, or flat)")
    init.add_argument("--out", type=Path, default=Path("audit.yaml"), help="config to write (default audit.yaml)")
    init.set_defaults(func=_cmd_init)
    validate = sub.add_parser("validate", help="check a config without running it")
    validate.add_argument("config", type=Path)
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"audit: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("audit: interrupted; no report was written", file=sys.stderr)
        return 130
    except Exception as exc:  # the gate fails closed on anything unexpected
        traceback.print_exc()
        print(f"audit: internal error: {type(exc).__name__}: {exc}; the gate fails (exit 3). Please report "
              "this with the traceback above.", file=sys.stderr)
        return EXIT_INTERNAL
