"""The preprocess YAML names every threshold, and bad configs fail naming the field."""

from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
import yaml

from csg_lightning.io.validation import InputError
from csg_lightning.preprocess.config import PreprocessConfig, load_config

YAML = Path(__file__).resolve().parents[1] / "experiments" / "data" / "preprocess.yaml"


def _names(obj, prefix=""):
    out = set()
    for f in fields(obj):
        value = getattr(obj, f.name)
        out |= _names(value, f"{prefix}{f.name}.") if is_dataclass(value) else {prefix + f.name}
    return out


def _keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        if isinstance(v, dict) and k != "estimator":
            out |= _keys(v, f"{prefix}{k}.")
        else:
            out.add(prefix + k)
    return out


def test_the_yaml_names_every_field_with_the_default_value():
    raw = yaml.safe_load(YAML.read_text())
    assert _keys(raw) == _names(PreprocessConfig())
    loaded, default = load_config(YAML), PreprocessConfig()
    assert {k: v for k, v in loaded.to_dict().items() if k != "estimator"} == {
        k: v for k, v in default.to_dict().items() if k != "estimator"
    }
    assert loaded.estimator["class_path"].endswith("DWPoseONNX")


def test_bad_values_name_the_field_and_the_estimator_is_replaced_whole(tmp_path):
    with pytest.raises(InputError, match="qc.min_secs"):
        load_config(None, {"qc": {"min_secs": 3}})
    with pytest.raises(InputError, match="crop.scale"):
        load_config(None, {"crop": {"scale": "big"}})
    bad = tmp_path / "p.yaml"
    bad.write_text("speaker_from: nobody\n")
    with pytest.raises(InputError, match="speaker_from"):
        load_config(bad)
    cfg = load_config(None, {"estimator": {"class_path": "x.Y", "init_args": {"a": 1}}})
    assert cfg.estimator == {"class_path": "x.Y", "init_args": {"a": 1}}
    # the processing hash ignores the device and batch sizes, not the thresholds
    a = load_config(None, {"batch_frames": 4})
    assert a.processing_hash() == PreprocessConfig().processing_hash()
    assert load_config(None, {"qc": {"min_seconds": 2.0}}).processing_hash() != a.processing_hash()
