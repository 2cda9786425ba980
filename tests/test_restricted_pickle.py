"""The restricted unpickler: np.save'd dicts load, anything naming another global is refused unrun."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import numpy.lib.format as npy_format
import pytest

from csg_lightning.io.restricted_pickle import UnsafePickleError, load_npy, restricted_loads
from csg_lightning.io.validation import InputError


def _object_npy(path, payload: bytes) -> None:
    """A .npy file with the header of a 0-d object array followed by ``payload`` (a pickle)."""
    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(payload)


def _pose_dict():
    return {
        "bodies": {
            "candidate": np.arange(36, dtype=np.float64).reshape(18, 2) / 100,
            "subset": np.arange(18, dtype=np.float64)[None],
            "score": np.full((1, 18), 0.75, dtype=np.float32),
        },
        "hands": np.zeros((2, 21, 2), dtype=np.float32),
        "faces": np.ones((1, 68, 2), dtype=np.float16),
        "count": np.int64(3),
        "scale": np.float32(0.5),
        "names": ["a", "b"],
        "flags": (True, None, 2.5),
    }


def test_np_saved_dict_loads(tmp_path):
    path = tmp_path / "pose.npy"
    pose = _pose_dict()
    np.save(path, pose, allow_pickle=True)
    loaded = load_npy(path)
    assert isinstance(loaded, dict)
    assert set(loaded) == set(pose)
    for key in ("candidate", "subset", "score"):
        np.testing.assert_array_equal(loaded["bodies"][key], pose["bodies"][key])
        assert loaded["bodies"][key].dtype == pose["bodies"][key].dtype
    np.testing.assert_array_equal(loaded["faces"], pose["faces"])
    assert loaded["count"] == 3 and loaded["count"].dtype == np.int64
    assert loaded["scale"] == np.float32(0.5)
    assert loaded["names"] == ["a", "b"] and loaded["flags"] == (True, None, 2.5)


def test_list_of_dicts_and_plain_arrays(tmp_path):
    poses = np.empty(2, dtype=object)
    poses[0], poses[1] = _pose_dict(), _pose_dict()
    np.save(tmp_path / "poses.npy", poses, allow_pickle=True)
    loaded = load_npy(tmp_path / "poses.npy")
    assert loaded.shape == (2,) and all(isinstance(p, dict) for p in loaded)

    plain = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "plain.npy", plain)
    np.testing.assert_array_equal(load_npy(tmp_path / "plain.npy"), plain)


def test_numpy1_style_globals_load(tmp_path):
    """np.save of numpy 1.x writes protocol 3 naming numpy.core.multiarray: still readable."""
    array = np.array({"candidate": np.array([[0.25, 0.5]]), "n": np.float64(2.0)}, dtype=object)
    payload = pickle.dumps(array, protocol=3)
    assert b"numpy._core.multiarray" in payload
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    _object_npy(tmp_path / "old.npy", payload)
    loaded = load_npy(tmp_path / "old.npy")
    np.testing.assert_array_equal(loaded["candidate"], [[0.25, 0.5]])
    assert loaded["n"] == 2.0


def test_dtype_classes_allowed():
    assert restricted_loads(pickle.dumps(np.dtypes.Float64DType)) is np.dtypes.Float64DType
    assert restricted_loads(pickle.dumps(np.dtype("<f4"))) == np.dtype("<f4")


def test_crafted_os_system_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    path = tmp_path / "evil.npy"
    _object_npy(path, payload)
    with pytest.raises(UnsafePickleError) as err:
        load_npy(path, "pose file")
    message = str(err.value)
    assert str(path) in message and "os.system" in message
    assert not marker.exists()
    # np.load would have run it: the payload is a working exploit, not a malformed file.
    assert isinstance(err.value, InputError)


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_real_pickled_reduce_exploit_refused(tmp_path):
    """A pickle written by the pickle module itself (protocol 4, STACK_GLOBAL) inside a dict."""
    marker = tmp_path / "pwned2"
    path = tmp_path / "evil_dict.npy"
    np.save(path, {"bodies": _Evil(f"touch {marker}")}, allow_pickle=True)
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        load_npy(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load"), ("numpy.dtypes", "__builtins__"),
     ("numpy._core.multiarray", "frombuffer"), ("numpy.lib.npyio", "load")],
)  # fmt: skip
def test_other_globals_refused(module, name):
    payload = f"c{module}\n{name}\n.".encode()
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        restricted_loads(payload, "crafted")


def test_damaged_files_named(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, _pose_dict(), allow_pickle=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.npy: damaged pickle"):
        load_npy(path)
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(InputError, match="text.npy: not a .npy file"):
        load_npy(tmp_path / "text.npy")
    with pytest.raises(InputError, match="persistent id"):
        restricted_loads(b"Pabc\n.")


def test_loads_from_bytes():
    buffer = io.BytesIO()
    pickle.dump(np.arange(3), buffer, protocol=4)
    np.testing.assert_array_equal(restricted_loads(buffer.getvalue()), [0, 1, 2])
