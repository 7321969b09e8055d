"""Constructor parameters of the scikit-learn style classes (estimators, vectorizer)."""

__all__ = ["store_params"]


def store_params(obj, values):
    """The whole ``__init__`` of a scikit-learn style class: keep every constructor argument
    under its own name, and do nothing else (validation happens in ``fit``).

    Parameters
    ----------
    obj : BaseEstimator
    values : dict
        ``locals()`` of the ``__init__``.
    """
    for name in type(obj)._get_param_names():
        setattr(obj, name, values[name])
