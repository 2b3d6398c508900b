"""Reading a YAML config strictly, and quoting its values in error messages safely.

* A key given twice in one mapping is an error (YAML loaders keep the last one silently, so
  `trust_code: false` followed by `trust_code: true` would run model code).
* Bytes that are not UTF-8 text (or control characters such as NUL) give one line naming the
  byte offset, not PyYAML's multi-line report.
* Values are quoted in messages with a bounded repr: an alias bomb (`a: &a [*b, *b, ...]`) is
  cheap to load because aliases share objects, but formatting it in full takes minutes and
  exhausts memory.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

from audit.errors import UserError

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxset = 2, 6, 6, 6, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 80, 80, 40


def short_repr(value: Any) -> str:
    """repr() bounded in size and time, whatever the value holds."""
    return _REPR.repr(value)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {short_repr(key)} is given twice (first on line {first.start_mark.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)



def parse_yaml(file, text: bytes) -> Any:
    """The YAML document in `text` (read from `file`), or a one-line UserError."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.reader.ReaderError as exc:
        raise UserError(f"{file}: byte {exc.position}: not UTF-8 text (or a control character such as NUL); "
                        "save the config as plain UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        fix = "give each key once" if "given twice" in problem else "fix the syntax"
        raise UserError(f"{file}: {where}: not valid YAML ({problem[:300]}); {fix}") from None
    except RecursionError:
        raise UserError(f"{file}: YAML: nested too deeply; fix the syntax") from None


def flag_numbers(text: str, kind, command: str, flag: str, example: str) -> list:
    """A comma-separated list of numbers given to a command-line flag (`--size 256,256`), or a
    one-line error naming the command and the flag."""
    from audit.errors import UserError

    try:
        return [kind(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{command}: {flag} {short_repr(text)} is not a comma-separated list of numbers; "
                        f"write it like {example}") from None
