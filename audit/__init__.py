"""audit: find spurious concepts (shortcuts) in Keras image classifiers before release.

Python API (docs/guide.md, "Python API"):

    import audit
    result = audit.run("audit.yaml", out="reports/candidate")   # -> audit.AuditResult
    cfg = audit.load_config("audit.yaml", overrides={"visualize": {"steps": 32}})

`import audit` stays light: the API loads on first use and TensorFlow only when an audit runs.
"""

from audit.version import __version__

__all__ = ["AuditResult", "UserError", "load_config", "run", "__version__"]


def __getattr__(name: str):
    if name in ("AuditResult", "UserError", "load_config", "run"):
        from audit import api

        return getattr(api, name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
