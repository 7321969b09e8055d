"""What :mod:`fastrnn.dask` and :mod:`fastrnn.ray` share: the lazy import of the cluster package
with an error naming the extra, and the check of the method name."""

import importlib

PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
                   "transform")


def require(module, extra, what):
    """Import ``module`` or raise an ``ImportError`` that names the extra which installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the {module!r} package, which is not installed ({exc}). Install it "
            f"with: pip install 'fastrnn[{extra}]'"
        ) from exc


def check_method(model, method):
    """Return the bound ``model.<method>``; raise naming the methods accepted otherwise."""
    if method not in PREDICT_METHODS:
        raise ValueError(f"method must be one of {list(PREDICT_METHODS)}, got {method!r}.")
    if not callable(getattr(model, method, None)):
        raise ValueError(
            f"{type(model).__name__} has no method {method!r}; pass a fitted model that has it "
            f"(a classifier for predict_proba, for example)."
        )
    return getattr(model, method)


def apply_method(model, method, X):
    """``model.<method>(X)`` where ``X`` is a list of sequences or a padded array."""
    return getattr(model, method)(X)
