"""Read joblib pickles (scikit-learn's `.pkz` caches) without running code from them.

`joblib.load` is `pickle.load`: a crafted file calls any function it names while it is read,
before a loader can say the file is wrong. Data files hold only numpy arrays in plain
containers, so this reader admits only those (as `torch.load(weights_only=True)` does for
weights) and refuses anything else by name, before it is built.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
from joblib import numpy_pickle

from ._common import UnsafeDataError, read_data_file

__all__ = ["read_joblib", "ALLOWED_GLOBALS"]

#: (module, name) of everything a data pickle may build: joblib's array record, numpy arrays,
#: dtypes and scalars, and the builtin containers that pickle does not write as opcodes.
ALLOWED_GLOBALS = frozenset({
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy", "memmap"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
    ("collections", "OrderedDict"),
})


class _Refused(pickle.UnpicklingError):
    """A pickle asked for something outside ALLOWED_GLOBALS (raised before it is built)."""


class _RestrictedUnpickler(numpy_pickle.NumpyUnpickler):
    """joblib's unpickler (it reads the arrays stored after their NumpyArrayWrapper records)
    with an allow-list on every global the stream names."""

    dispatch = numpy_pickle.NumpyUnpickler.dispatch.copy()

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)

    def load_build(self):
        # Object arrays are a nested pickle stream: no data set needs one, so refuse them here
        # rather than rely on the joblib version routing the nested stream through find_class.
        obj, state = self.stack[-2], self.stack[-1]
        if isinstance(obj, numpy_pickle.NumpyArrayWrapper):
            dtype = state.get("dtype") if isinstance(state, dict) else None
            if not isinstance(dtype, np.dtype) or dtype.hasobject:
                raise _Refused(f"an array of dtype {dtype!r} (Python objects)")
        numpy_pickle.NumpyUnpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build


def _open_decompressed(fh, filename: str):
    """joblib's own detection of the compression (zlib, gzip, bz2, xz, lz4) around `fh`."""
    opener = getattr(numpy_pickle, "_validate_fileobject_and_memmap", None) or numpy_pickle._read_fileobject
    return opener(fh, filename, None)


def _load(path: Path):
    with open(path, "rb") as fh, _open_decompressed(fh, str(path)) as opened:
        fobj = opened[0] if isinstance(opened, tuple) else opened
        if isinstance(fobj, str):  # joblib < 0.10 format: its reader is a plain, unrestricted pickle
            raise _Refused("the joblib < 0.10 file format")
        return _RestrictedUnpickler(str(path), fobj, ensure_native_byte_order=True).load()


def read_joblib(name: str, path: str | os.PathLike, remedy: str):
    """The object in joblib file `path` (arrays in dicts, lists, tuples), read without running code.

    A file that names anything else raises UnsafeDataError (nothing from it is built or run);
    a damaged one CorruptDataError, an unreadable one DataPermissionError; both say `remedy`.
    """
    path = Path(path)

    def read():
        try:
            return _load(path)
        except _Refused as err:
            raise UnsafeDataError(
                f"data set {name!r}: refused to read {path}: it asks for {err}, which a data file never "
                "holds; the file is not what it claims to be (it may have been tampered with) and "
                f"reading it could run code. Nothing from it was run. {remedy}"
            ) from None

    return read_data_file(name, path, read, remedy)
