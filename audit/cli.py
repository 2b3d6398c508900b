"""Command line: `audit run CONFIG`, `audit demo`, `audit validate CONFIG`, `audit diff A B`,
`audit dream [CONFIG] [flags]`, `audit discover [CONFIG] [flags]`, `audit concept from-pattern`,
`audit init MODEL`. A thin layer over the Python API (audit/api.py): it parses flags, prints, and
maps outcomes to exit codes. Each sub-command has its parser (`_add_*`) and its handler (`_cmd_*`).

Exit codes: 0 pass (or warn), 1 gate failed, 2 bad config or input, 3 internal error.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import traceback
from pathlib import Path

from audit.version import __version__
from audit.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, Terminated, UserError, handle_stop_signals


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
    except ImportError:
        from audit.api import NO_TENSORFLOW

        raise UserError(NO_TENSORFLOW) from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import tensorflow as tf

    # its Python-level retracing advice is about TensorFlow's internals, not the user's input
    tf.get_logger().setLevel("ERROR")


def _cmd_validate(args) -> int:
    from audit.config.load import load_config
    from audit.inputs.folders import check_folders

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
    from audit.api import load_config
    from audit.config.execution import with_execution_flags

    cfg = load_config(args.config)  # validate before paying for TensorFlow's import
    return _run_and_print(with_execution_flags(cfg, args), args)


def _cmd_demo(args) -> int:
    from importlib.resources import files

    from audit.api import load_config

    name = "demo_control" if args.control else "demo"
    config = Path(str(files("audit.demo") / f"{name}.yaml"))
    args.out = args.out or Path("audit-demo") / name
    if not args.quiet:
        print(f"config: {config}")
    code = _run_and_print(load_config(config), args)
    if not args.quiet:
        print("(the demo's control model passes)" if args.control else
              "(the demo's shortcut model fails the gate by design: exit 1; `audit demo --control` passes)")
    return code


def _run_and_print(cfg, args) -> int:
    """`audit run` and `audit demo`: the API does the work; this prints for a terminal and for CI."""
    from audit.config.load import run_inputs
    from audit.report.folder import check_replaceable
    from audit.report.history import check_history_folder
    from audit.report import ci
    from audit.api import run

    baseline = getattr(args, "baseline", None)
    check_replaceable(args.out or cfg.report.out, inputs=run_inputs(cfg, baseline))  # before TensorFlow's import
    history = None if args.no_history else args.history
    if history is not None:
        check_history_folder(history, args.out or cfg.report.out, run_inputs(cfg, baseline))
    _quiet_tensorflow()
    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    audit = run(cfg, out=args.out, baseline=baseline, history=history,
                progress=not args.no_progress and not args.quiet, log=log)
    result, out = audit.data, audit.report_dir
    # The report is written and its verdict is the exit code. What follows is convenience (CI
    # annotations, step summary, the printed summary): a failure there is a warning, never a
    # different exit code.
    if os.environ.get("GITHUB_ACTIONS") == "true":
        _convenience("GitHub annotations were not printed", lambda: _print_lines(ci.github_annotations(result)))
    _convenience("$GITHUB_STEP_SUMMARY was not written",
                 lambda: ci.append_step_summary((out / "summary.md").read_text(encoding="utf-8")))
    _convenience("the summary was not printed", lambda: _print_summary(result, out, audit, args.quiet))
    return audit.exit_code


def _convenience(what: str, action):
    """Run a step that must not change the exit code; a failure becomes one warning line."""
    try:
        return action()
    except Exception as exc:  # noqa: BLE001 - the verdict is already written and stands
        try:
            print(f"audit: warning: {what}: {_one_line(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - e.g. stderr closed
            pass
        return None


def _print_lines(lines) -> None:
    for line in lines:
        print(line)


def _print_summary(result: dict, out: Path, audit, quiet: bool) -> None:
    from audit.report.console import summary_lines

    _print_lines(_one_line(line) for line in summary_lines(result, quiet, out, audit.history, audit.history_error))


def _cmd_dream(args) -> int:
    from audit.config.dream import dream_config_from_flags, load_dream_config
    from audit.report.folder import check_replaceable

    cfg = load_dream_config(args.config) if args.config else dream_config_from_flags(args, Path.cwd())
    check_replaceable(args.out if args.config and args.out else cfg.report.out, inputs=cfg.inputs())  # before TF
    _quiet_tensorflow()
    from audit.flows.dream import run_dream

    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        _, out = run_dream(cfg, out=args.out if args.config else None, progress=not args.quiet, log=log)
    except UserError as exc:
        source = str(args.config) if args.config else "audit dream"
        raise UserError(str(exc) if str(exc).startswith(source) else f"{source}: {exc}") from None
    print(_one_line(f"dream: {out / 'images' / 'dream.png'}"))
    print(_one_line(f"report: {out / 'index.html'}"))
    return 0


def _cmd_diff(args) -> int:
    from audit.gate.baseline import load_baseline
    from audit.report.folder import write_text_atomic
    from audit.report.diff import diff_problem, diff_record, render_html, render_markdown

    results = []
    for path in (args.baseline, args.candidate):
        state, data, reason = load_baseline(path)
        if data is None:
            raise UserError(f"audit diff: {reason}; give two audit.json files written by `audit run`")
        results.append(data)
    problem = diff_problem(results[1])
    if problem:
        raise UserError(f"audit diff: {args.candidate} is not an audit result ({problem}); give two audit.json "
                        "files written by `audit run`")
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


def _cmd_discover(args) -> int:
    from audit.flows.discover import from_config, from_flags
    from audit.report.folder import check_replaceable

    cfg = from_config(args.config, args.out) if args.config else from_flags(args, Path.cwd())
    check_replaceable(cfg.report.out, inputs=cfg.inputs())  # before TensorFlow's import
    _quiet_tensorflow()
    from audit.flows.discover import run_discover_command
    from audit.report.console import discovery_lines

    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        result, out = run_discover_command(cfg, progress=not args.quiet, log=log)
    except UserError as exc:
        source = str(args.config) if args.config else "audit discover"
        raise UserError(str(exc) if str(exc).startswith(source) else f"{source}: {exc}") from None
    _print_lines(_one_line(line) for line in discovery_lines(result, args.quiet))
    print(_one_line(f"report: {out / 'index.html'}"))
    return result["exit_code"]


def _cmd_concept(args) -> int:
    from audit.flows.concept import promote

    written = promote(args.report, args.class_name, args.pattern, args.name, args.out)
    print(_one_line(f"wrote {written['examples']} examples and {written['cutouts']} cutouts to {args.out}"))
    print(_one_line(f"add to concepts.bank: {written['yaml']}"))
    return 0


def _cmd_init(args) -> int:
    _quiet_tensorflow()
    from audit.flows.init import write_starter

    found = write_starter(args.model, args.out, args.probes, args.classes_file)
    rng = f"input range read from `{found['range_from']}`" if found["range_from"] else \
        "input range NOT found in the model: check `input_range`"
    print(_one_line(  # a layer or folder name from the model or the disk: escaped, never a second line
        f"wrote {args.out}: {found['outputs']} classes (from {found['classes_from']}), {rng}"))
    print(_one_line(f"next: audit validate {args.out} && audit run {args.out}"))
    return 0


def _output_flags(parser: argparse.ArgumentParser) -> None:
    """`audit run` and `audit demo`: how much is printed, and the run history."""
    parser.add_argument("--quiet", action="store_true", help="print only the verdict and the report path")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--history", type=Path, metavar="DIR",
                        help="also add this run to DIR/history.json and DIR/index.html (off by default)")
    parser.add_argument("--no-history", action="store_true", help="ignore --history (the default: no history)")


def _add_run(sub) -> None:
    from audit.config.execution import add_execution_flags

    run = sub.add_parser("run", help="visualize every class, score concepts, gate, write the report")
    run.add_argument("config", type=Path)
    run.add_argument("--out", type=Path, help="report folder (default: report.out from the config)")
    run.add_argument("--baseline", type=Path, help="audit.json of the last released model (overrides gate.baseline)")
    _output_flags(run)
    add_execution_flags(run)
    run.set_defaults(func=_cmd_run)


def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="audit the embedded demo model (no config needed); it fails the gate",
                          description="Runs the packaged demo config: the shortcut model fails the gate (exit 1).")
    demo.add_argument("--control", action="store_true", help="audit the control model instead (it passes)")
    demo.add_argument("--out", type=Path, help="report folder (default: audit-demo/demo or audit-demo/demo_control)")
    _output_flags(demo)
    demo.set_defaults(func=_cmd_demo)


def _add_dream(sub) -> None:
    from audit.config.dream import add_dream_flags

    dream = sub.add_parser("dream", help="DeepDream: amplify what a layer, channels or a class see in an image",
                           description="Give a CONFIG with a `dream:` section, or flags that build one.")
    add_dream_flags(dream)
    dream.set_defaults(func=_cmd_dream)


def _add_diff(sub) -> None:
    diff = sub.add_parser("diff", help="compare two audits: new and resolved findings, score changes")
    diff.add_argument("baseline", type=Path, help="audit.json of the earlier (released) model")
    diff.add_argument("candidate", type=Path, help="audit.json of the new model")
    diff.add_argument("--out", type=Path, help="write diff.md and diff.html here (default: Markdown to stdout)")
    diff.set_defaults(func=_cmd_diff)


def _add_init(sub) -> None:
    init = sub.add_parser("init", help="write a starter config for a model")
    init.add_argument("model", type=Path, help="a .keras or .h5 model file")
    init.add_argument("--probes", type=Path, help="a folder of probe images (one sub-folder per class, or flat)")
    init.add_argument("--classes-file", type=Path, help="the model's class names, one per line in output order "
                      "(the probe sub-folders may then be any of them)")
    init.add_argument("--out", type=Path, default=Path("audit.yaml"), help="config to write (default audit.yaml)")
    init.set_defaults(func=_cmd_init)


def _add_discover(sub) -> None:
    from audit.config.discover import add_discover_flags

    disc = sub.add_parser("discover", help="find what drives each class on its own probe images, without a "
                          "concept list, and test each pattern by pasting it into other classes' images",
                          description="Give a CONFIG (its model, visualize and discover sections), or --model and "
                          "--probes (one sub-folder per class).")
    add_discover_flags(disc)
    disc.set_defaults(func=_cmd_discover)


def _add_concept(sub) -> None:
    concept = sub.add_parser("concept", help="concept folders: `concept from-pattern` promotes a discovered pattern")
    concept_sub = concept.add_subparsers(dest="concept_command", required=True)
    promote = concept_sub.add_parser("from-pattern", help="write a concept folder (examples, cutouts) from a "
                                     "pattern in audit.json or discovery.json")
    promote.add_argument("report", type=Path, help="audit.json or discovery.json with a `discovered` list")
    promote.add_argument("class_name", metavar="CLASS")
    promote.add_argument("pattern", type=int, metavar="PATTERN", help="the pattern number within the class")
    promote.add_argument("name", metavar="NAME", help="the concept's name")
    promote.add_argument("--out", type=Path, required=True, help="the concept folder to write, e.g. concepts/NAME")
    promote.set_defaults(func=_cmd_concept)


def _add_validate(sub) -> None:
    validate = sub.add_parser("validate", help="check a config without running it")
    validate.add_argument("config", type=Path)
    validate.set_defaults(func=_cmd_validate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit", description="Find spurious concepts in Keras image classifiers.")
    parser.add_argument("--version", action="version", version=f"audit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_demo, _add_dream, _add_diff, _add_init, _add_discover, _add_concept, _add_validate):
        add(sub)  # in this order in `audit --help`
    return parser


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # with the Unicode line and paragraph separators
MAX_MESSAGE = 2000


def _one_line(text: str) -> str:
    """A message on one line of bounded length: control characters (a newline in a file name)
    are shown escaped, never executed by a terminal or split into two lines."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def _flush_stdout() -> None:
    """A closed stdout (`audit run ... | head -1`) must not turn the verdict into another exit code."""
    try:
        sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _interrupted(exc: KeyboardInterrupt) -> int:
    if isinstance(exc, Terminated):
        name = signal.Signals(exc.args[0]).name
        print(f"audit: terminated ({name}); no report was written, the previous one is untouched", file=sys.stderr)
        return 128 + exc.args[0]
    print("audit: interrupted; no report was written, the previous one is untouched", file=sys.stderr)
    return 130


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """A signal that arrived inside C code (NumPy handing an array to TensorFlow) can surface as a
    SystemError whose cause is the KeyboardInterrupt: it is still the signal, not an internal error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name with undecodable bytes must not crash a print
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    handle_stop_signals()
    try:
        code = args.func(args)
        _flush_stdout()
        return code
    except UserError as exc:
        print(f"audit: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except Exception as exc:  # the gate fails closed on anything unexpected
        signal_behind = _interrupt_behind(exc)
        if signal_behind is not None:
            return _interrupted(signal_behind)
        traceback.print_exc()
        print(f"audit: internal error: {type(exc).__name__}: {exc}; the gate fails (exit 3). Please report "
              "this with the traceback above.", file=sys.stderr)
        return EXIT_INTERNAL
