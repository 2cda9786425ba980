"""Reading pickled ``.npy`` files (``np.save`` of a dict or a list) without running the pickle's code.

``np.save(path, {"bodies": ...})`` writes a normal ``.npy`` header for a 0-d object array and then a
pickle of that array. ``np.load(path, allow_pickle=True)`` would unpickle it with the full pickle
machinery, which calls any global the file names (``os.system`` included). Here the header is parsed
with :mod:`numpy.lib.format` and the rest is unpickled by :class:`RestrictedUnpickler`, whose
``find_class`` admits only what numpy needs to rebuild arrays:

==========================================================  ==========================================
global                                                      what it rebuilds
==========================================================  ==========================================
``numpy.core.multiarray._reconstruct`` (numpy 1.x files),   an empty array that the pickle then fills
``numpy._core.multiarray._reconstruct`` (numpy 2.x files)
``numpy.ndarray``                                           the array type passed to ``_reconstruct``
``numpy.dtype``, ``numpy.dtypes.<Name>DType``               dtypes
``numpy.core.multiarray.scalar``,                           numpy scalars (``np.float32(0.5)``)
``numpy._core.multiarray.scalar``
==========================================================  ==========================================

Plain Python containers and numbers (dict, list, tuple, str, int, float, bool, None) need no
global. Anything else is refused with :class:`UnsafePickleError` naming the file and the global, before
it is looked up or called.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format

from csg_lightning.io.validation import InputError, check_input_file

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class UnsafePickleError(InputError):
    """A pickle that names a global outside the numpy array-reconstruction allow-list."""


def _is_dtype_class(module: str, name: str) -> bool:
    if module != "numpy.dtypes" or not name.endswith("DType") or not name.isidentifier():
        return False
    import numpy.dtypes

    value = getattr(numpy.dtypes, name, None)
    return isinstance(value, type) and issubclass(value, np.dtype)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, dtypes and scalars, and refuses every other global.

    ``where`` names the source in error messages (usually the file path).
    """

    def __init__(self, file, where: str = "pickle") -> None:
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            if module == "numpy":
                return getattr(np, name)
            # numpy 2 renamed numpy.core to numpy._core: accept files of either, on either.
            for candidate in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except ImportError:
                    continue
        if _is_dtype_class(module, name):
            import numpy.dtypes

            return getattr(numpy.dtypes, name)
        raise UnsafePickleError(
            f"{self.where}: refused to unpickle the global {module}.{name}: only numpy array "
            "reconstruction (numpy ndarray/dtype/scalar) is allowed in a pose file"
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(
            f"{self.where}: refused a pickle persistent id ({pid!r}): not a plain numpy pickle"
        )


def restricted_loads(data: bytes, where: str = "pickle"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (errors: :class:`InputError` naming ``where``)."""
    return _load(io.BytesIO(data), where)


def _load(f, where: str):
    try:
        return RestrictedUnpickler(f, where).load()
    except InputError:
        raise
    except Exception as err:  # UnpicklingError, EOFError, ValueError, ... of a damaged pickle
        raise InputError(f"{where}: damaged pickle ({type(err).__name__}: {err})") from err


def load_npy(path: str | os.PathLike, what: str = "file"):
    """The content of a ``.npy`` file: a plain array as-is (read with ``allow_pickle=False``); the pickle
    of an object array (``np.save`` of a dict or list) unpickled by :class:`RestrictedUnpickler`.

    A 0-d object array is unwrapped to the object it holds (``np.save(p, {...})`` -> the dict).
    Raises :class:`InputError` naming the file for a missing, non-npy or damaged file and
    :class:`UnsafePickleError` for a pickle that names any other global.
    """
    path = Path(check_input_file(path, what))
    where = f"{what} {path}"
    with open(path, "rb") as f:
        try:
            version = npy_format.read_magic(f)
        except ValueError as err:
            raise InputError(f"{where}: not a .npy file ({err})") from err
        try:
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = npy_format.read_array_header_2_0(f)
            else:
                raise InputError(
                    f"{where}: .npy format version {version} is not supported (1.0 or 2.0 expected)"
                )
        except InputError:
            raise
        except Exception as err:
            raise InputError(f"{where}: damaged .npy header ({type(err).__name__}: {err})") from err
        if not dtype.hasobject:
            f.seek(0)
            try:
                return npy_format.read_array(f, allow_pickle=False)
            except Exception as err:
                raise InputError(f"{where}: damaged .npy data ({type(err).__name__}: {err})") from err
        value = _load(f, where)
    if not isinstance(value, np.ndarray):
        raise InputError(f"{where}: the pickle holds a {type(value).__name__}, expected a numpy object array")
    if value.shape != tuple(shape):
        raise InputError(
            f"{where}: the pickled array has shape {value.shape}, the header says {tuple(shape)}"
        )
    return value.item() if value.ndim == 0 else value
