"""Command-line drills: ``sample-skeleton`` outputs and numeric options (checked before sampling), and
``csg --config`` files (checked before LightningCLI parses them)."""

from __future__ import annotations

import pytest
from bad_inputs import expect_exit, expect_usage_error, skeleton, tone, tree, write_float_wav

from csg_lightning.cli import main as csg
from csg_lightning.generation.sample_skeleton import main as sample_skeleton
from csg_lightning.generation.sample_skeleton import write_skeleton_outputs
from csg_lightning.io.validation import InputError


@pytest.fixture
def speech(tmp_path):
    return write_float_wav(tmp_path / "speech.wav", tone(0.4))


def _argv(ckpt, audio, out, *extra):
    return ["--ckpt", str(ckpt), "--audio", str(audio), "--out", str(out), "--device", "cpu", *extra]


def test_output_paths_are_checked_before_sampling(tmp_path, speech, stage1_checkpoint, no_stage1_loading):
    """The landed code sampled first, then left OUT.npz without its mp4 when OUT.mp4 was a directory."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "taken.mp4").mkdir()
    (out / "npz_taken.npz").mkdir()
    (out / "file").write_text("a file where a folder should be")
    before = tree(out)
    for target, named, expected in [
        (out / "taken.mp4", out / "taken.mp4", "is a directory, expected a .mp4 file path"),
        (out / "npz_taken.mp4", out / "npz_taken.npz", "--out (its .npz)"),
        (out / "clip.avi", out / "clip.avi", "expected a path ending in .mp4"),
        (out / "file" / "clip.mp4", out / "file", "is a file, so the output folder cannot be created"),
    ]:
        expect_exit(sample_skeleton, _argv(stage1_checkpoint, speech, target), "--out", named, expected,
                    folder=out, before=before)  # fmt: skip
    assert no_stage1_loading.calls == 0


def test_write_skeleton_outputs_leaves_no_npz_without_its_video(tmp_path):
    (tmp_path / "clip.mp4").mkdir()
    kp, sc = skeleton(10)
    with pytest.raises(InputError, match="is a directory"):
        write_skeleton_outputs(tmp_path / "clip.mp4", kp, sc, tone(0.4), width=512, height=512)
    assert tree(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--steps", "0", r"expected an integer >= 1, got 0"),  # was ZeroDivisionError after loading
        ("--steps", "-3", r"expected an integer >= 1, got -3"),  # was accepted
        ("--size", "0", r"expected an integer >= 16, got 0"),  # was accepted
        ("--size", "8", r"expected an integer >= 16, got 8"),
        ("--guidance", "nan", r"expected a finite number >= 0, got nan"),
        ("--guidance", "-1", r"expected a finite number >= 0, got -1"),
        ("--width", "0", r"expected a finite number > 0, got 0"),
        ("--height", "inf", r"expected a finite number > 0, got inf"),
    ],
)
def test_numeric_options_are_refused_by_argparse(
    tmp_path, speech, stage1_checkpoint, no_stage1_loading, capsys, option, value, expected
):
    out = tmp_path / "out"
    out.mkdir()
    argv = _argv(stage1_checkpoint, speech, out / "clip.mp4", f"{option}={value}")
    expect_usage_error(sample_skeleton, argv, option, capsys, expected)
    assert tree(out) == [] and no_stage1_loading.calls == 0


def test_width_needs_height_and_devices_must_exist(tmp_path, speech, stage1_checkpoint, no_stage1_loading):
    out = tmp_path / "out"
    out.mkdir()
    expect_exit(sample_skeleton, _argv(stage1_checkpoint, speech, out / "a.mp4", "--width", "512"),
                "--width and --height", "give both", folder=out)  # fmt: skip
    expect_exit(sample_skeleton, _argv(stage1_checkpoint, speech, out / "a.mp4", "--device", "tpu9"),
                "--device", "tpu9", "not a torch device", folder=out)  # fmt: skip
    assert no_stage1_loading.calls == 0


# ------------------------------------------------------------------------------------ csg --config


@pytest.fixture
def no_lightning_cli(monkeypatch):
    """LightningCLI must not even start parsing when a --config file is bad."""
    import csg_lightning.cli as cli

    def refuse(*args, **kwargs):
        raise AssertionError("LightningCLI started although the --config file is bad")

    monkeypatch.setattr(cli, "CSGCLI", refuse)


@pytest.mark.parametrize(
    "text, form, expected",
    [
        (None, "--config", "file not found"),
        ("model:\n  lr: 0.1\n   bad_indent: 2\n", "--config", "YAML syntax error at line 3, column"),
        ("trainer:\n  max_steps: [1, 2\nmodel: {}\n", "--config=", "YAML syntax error at line 3"),
        ("- fit\n- model\n", "-c", "the top level is a list (line 1), expected a mapping of options"),
        ("just a string\n", "--config", "the top level is a single value"),
        ("# only a comment\n", "--config", "holds no YAML document, expected a mapping"),
        ("", "--config", "the file is empty (0 bytes)"),
        ("DIR", "--config", "is a directory"),
    ],
    ids=["missing", "indent", "unclosed-list", "list", "scalar", "comment-only", "zero-bytes", "directory"],
)
def test_bad_config_file_is_named_before_lightning_parses(tmp_path, no_lightning_cli, text, form, expected):
    path = tmp_path / "experiment.yaml"
    if text == "DIR":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    args = [f"--config={path}"] if form.endswith("=") else [form, str(path)]
    good = tmp_path / "good.yaml"
    good.write_text("trainer:\n  max_steps: 1\n")
    message = expect_exit(csg, ["fit", "--config", str(good), *args], "csg: --config", path, expected,
                          folder=tmp_path / "runs")  # fmt: skip
    assert str(good) not in message  # only the bad file is blamed
