"""Reader for the ``.ts`` format of the UCR / UEA time series archives (as shipped by sktime)."""

import math

import numpy as np



def _parse_float(token):
    token = token.strip()
    if token == "?":
        return math.nan
    return float(token)


def parse_ts(text):
    """Parse the text of a ``.ts`` file.

    Lines starting with ``#`` are comments; lines starting with ``@`` are
    header lines up to ``@data``; after it, one series per line: channels
    separated by ``:``, values by ``,``, the label last (when
    ``@classLabel true`` or ``@targetLabel true``; a file without either
    header is taken to have labels). Missing values are ``?`` or ``NaN``.
    Trailing missing values of each channel are padding and are stripped, so
    every series keeps its real length; all channels of one series must have
    the same length afterwards. Missing values inside a series stay ``NaN``.

    Parameters
    ----------
    text : str
        Whole content of the file.

    Returns
    -------
    X : list of ndarray of shape (T_i, n_channels), dtype float64
        One array per series.
    y : ndarray of shape (n_series,) or None
        Labels as the strings written in the file (``@classLabel true``),
        floats (``@targetLabel true``) or ``None`` (``@classLabel false``).

    Raises
    ------
    ValueError
        Malformed header or data line (the message gives the line number).
    """
    header = {}
    class_labels = None
    has_label = True
    regression = False
    in_data = False
    X, y = [], []
    n_channels = None

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise ValueError(
                    f".ts line {lineno}: data line before '@data' (header lines start with "
                    f"'@'): {line[:60]!r}"
                )
            key, _, rest = line[1:].partition(" ")
            key = key.lower()
            words = rest.split()
            if key == "data":
                in_data = True
            elif key == "timestamps" and words and words[0].lower() == "true":
                raise ValueError(
                    f".ts line {lineno}: '@timeStamps true' (time-stamped values) is not "
                    f"supported; only plain comma-separated values are."
                )
            elif key == "classlabel":
                if not words or words[0].lower() not in ("true", "false"):
                    raise ValueError(
                        f".ts line {lineno}: '@classLabel' must be followed by true or "
                        f"false, got {rest!r}"
                    )
                has_label = words[0].lower() == "true"
                class_labels = set(words[1:]) if has_label and len(words) > 1 else None
            elif key == "targetlabel":
                if words and words[0].lower() == "true":
                    has_label, regression = True, True
                elif "classlabel" not in header:
                    has_label = False
            header[key] = words
            continue

        if line.startswith("@"):
            raise ValueError(f".ts line {lineno}: header line after '@data': {line[:60]!r}")
        fields = line.split(":")
        if has_label:
            if len(fields) < 2:
                raise ValueError(
                    f".ts line {lineno}: expected channels and a label separated by ':', got "
                    f"{line[:60]!r}"
                )
            label = fields.pop().strip()
            if not label:
                raise ValueError(f".ts line {lineno}: the label after the last ':' is empty")
            if regression:
                try:
                    label = float(label)
                except ValueError:
                    raise ValueError(
                        f".ts line {lineno}: target {label!r} is not a number"
                    ) from None
            elif class_labels is not None and label not in class_labels:
                raise ValueError(
                    f".ts line {lineno}: label {label!r} is not one of the classes declared "
                    f"by '@classLabel': {sorted(class_labels)}"
                )
        if n_channels is None:
            n_channels = len(fields)
            dims = header.get("dimensions")
            if dims and int(dims[0]) != n_channels:
                raise ValueError(
                    f".ts line {lineno}: {n_channels} channels, but '@dimensions {dims[0]}'"
                )
        elif len(fields) != n_channels:
            raise ValueError(
                f".ts line {lineno}: {len(fields)} channels, but the first series has "
                f"{n_channels}"
            )

        channels = []
        for c, field in enumerate(fields):
            try:
                values = np.array([_parse_float(v) for v in field.split(",")], dtype=np.float64)
            except ValueError:
                raise ValueError(
                    f".ts line {lineno}, channel {c}: not a comma-separated list of numbers "
                    f"('?' or NaN for missing): {field[:60]!r}"
                ) from None
            finite = np.flatnonzero(~np.isnan(values))
            channels.append(values[: finite[-1] + 1] if finite.size else values[:0])
        lengths = [len(ch) for ch in channels]
        if len(set(lengths)) != 1:
            raise ValueError(
                f".ts line {lineno}: the channels have different lengths after stripping "
                f"trailing missing values: {lengths}"
            )
        if lengths[0] == 0:
            raise ValueError(f".ts line {lineno}: the series has no values")
        X.append(np.stack(channels, axis=1))
        if has_label:
            y.append(label)

    if not in_data:
        raise ValueError(".ts text has no '@data' line")
    if not has_label:
        return X, None
    return X, np.array(y, dtype=np.float64 if regression else None)


