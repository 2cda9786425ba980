"""`csg generate --rows`: rows (CSV or CSG-405 test pairs) through a real `Trainer.predict` + prediction writer.

One process in-process (fast); two CPU processes (ddp, gloo) split four rows in a subprocess (slow).
Re-running skips finished rows; outputs are written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from speech import speech_wav
from tiny_chain import tiny_chain

from csg_lightning.cli import main as csg
from csg_lightning.generation.batch_generation import read_rows
from csg_lightning.io.mp4 import read_frames

CPU = ["--trainer.accelerator", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory, demo_corpus_video, demo_shards_video):
    return tiny_chain(tmp_path_factory, demo_corpus_video, demo_shards_video)


@pytest.fixture(scope="module")
def rows_folder(chain, tmp_path_factory) -> Path:
    """speech a/b/c/d (espeak-ng, two sentences), the photo and its pose, side by side."""
    folder = tmp_path_factory.mktemp("rows")
    speech_wav(folder / "a.wav", "Good morning, everyone.")
    speech_wav(folder / "b.wav", "Let me show you what I mean, with my hands.")
    for name in ("c", "d"):
        shutil.copy(folder / ("a.wav" if name == "c" else "b.wav"), folder / f"{name}.wav")
    shutil.copy(chain.photo, folder / "photo.png")
    shutil.copy(chain.reference_pose, folder / "photo.npz")
    return folder


def _csv(folder: Path, names: list[str], file: str = "rows.csv") -> Path:
    lines = ["audio,photo,reference_pose,name"] + [f"{n}.wav,photo.png,photo.npz,{n}" for n in names]
    (folder / file).write_text("\n".join(lines) + "\n")
    return folder / file


def _batch(chain, rows: Path, out: Path, *extra) -> None:
    csg(["generate", "--pipeline", str(chain.pipeline), "--rows", str(rows), "--out-dir", str(out), *CPU, *extra])


def test_one_process_generates_each_row_and_a_rerun_skips_finished_ones(chain, rows_folder, tmp_path, capsys):
    rows = _csv(rows_folder, ["a", "b"])
    _batch(chain, rows, tmp_path)
    assert "2 to generate" in capsys.readouterr().out
    for name in ("a", "b"):
        for suffix in (".mp4", ".npz", ".skeleton.mp4", ".config.yaml"):
            assert (tmp_path / f"{name}{suffix}").is_file(), f"{name}{suffix} missing"
        assert len(read_frames(tmp_path / f"{name}.mp4")) > 0
    assert (tmp_path / "pipeline.config.yaml").is_file() and not list(tmp_path.glob(".*tmp*"))
    times = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    _batch(chain, rows, tmp_path)
    assert "2 done already, 0 to generate" in capsys.readouterr().out
    (tmp_path / "b.mp4").unlink()  # an interrupted row: its mp4 (written last) is missing
    _batch(chain, rows, tmp_path)
    assert "1 done already, 1 to generate" in capsys.readouterr().out
    assert (tmp_path / "a.mp4").stat().st_mtime_ns == times["a.mp4"] and (tmp_path / "b.mp4").is_file()


def test_csg405_test_pairs_are_rows(chain, tmp_path):
    """test_pairs.json: the target's speech, the reference clip's first video frame and pose.npz."""
    clips = sorted(p.parent.name for p in chain.clips.glob("*/video.mp4"))
    (tmp_path / "clips").symlink_to(chain.clips)
    pairs = [{"target": clips[0], "ref": clips[1], "same_identity": False, "target_clip": f"clips/{clips[0]}",
              "ref_clip": f"clips/{clips[1]}", "available": True},
             {"target": clips[0], "ref": clips[0], "same_identity": True, "target_clip": f"clips/{clips[0]}",
              "ref_clip": f"clips/{clips[0]}", "available": True},
             {"target": "gone", "ref": "gone", "same_identity": True, "target_clip": "clips/gone",
              "ref_clip": "clips/gone", "available": False}]  # fmt: skip
    (tmp_path / "test_pairs.json").write_text(json.dumps(pairs))
    rows = read_rows(tmp_path / "test_pairs.json")
    assert [r["name"] for r in rows] == [f"cross/{clips[0]}", f"same/{clips[0]}"]
    assert rows[0]["photo"].endswith(f"{clips[1]}/video.mp4") and rows[0]["audio"].endswith(f"{clips[0]}/audio.wav")
    (tmp_path / "one.json").write_text(json.dumps(pairs[:1]))
    _batch(chain, tmp_path / "one.json", tmp_path / "gen", "--video.steps", "1")
    skeletons = np.load(tmp_path / "gen" / "cross" / f"{clips[0]}.npz")["keypoints"]
    assert skeletons.shape == (300, 134, 2)  # 12 s of the target's speech


def test_bad_rows_name_the_file_and_line(chain, rows_folder, tmp_path):
    (tmp_path / "cols.csv").write_text("speech,photo\nx.wav,y.png\n")
    with pytest.raises(SystemExit, match=r"cols.csv: header .*missing \['audio'\]"):
        _batch(chain, tmp_path / "cols.csv", tmp_path / "out")
    rows = _csv(rows_folder, ["a", "a"], "twice.csv")
    with pytest.raises(SystemExit, match=r"twice.csv: name 'a' at line 3 repeats line 2"):
        _batch(chain, rows, tmp_path / "out")
    with pytest.raises(SystemExit, match="--rows and --out-dir: give both"):
        csg(["generate", "--pipeline", str(chain.pipeline), "--rows", str(rows)])
    with pytest.raises(SystemExit, match="--trainer.devices: trainer options need --rows"):
        csg(["generate", "--pipeline", str(chain.pipeline), "--audio", "a.wav", "--photo", "p.png", "--out",
             "o.mp4", "--trainer.devices", "2"])  # fmt: skip


@pytest.mark.slow
def test_two_cpu_processes_split_the_rows(chain, rows_folder, tmp_path):
    """`csg generate --trainer.devices 2 --trainer.strategy ddp` (gloo): each process writes two of four rows."""
    rows = _csv(rows_folder, ["a", "b", "c", "d"], "four.csv")
    command = [str(Path(sys.executable).parent / "csg"), "generate", "--pipeline", str(chain.pipeline),
               "--rows", str(rows), "--out-dir", str(tmp_path), "--trainer.devices", "2",
               "--trainer.strategy", "ddp", *CPU]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = {}
    for name in "abcd":
        header = (tmp_path / f"{name}.config.yaml").read_text()
        assert (tmp_path / f"{name}.mp4").is_file()
        ranks[name] = next(line for line in header.splitlines() if line.startswith("# device:")).split("process ")[1]
    assert sorted(ranks.values()) == ["0 of 2", "0 of 2", "1 of 2", "1 of 2"], ranks
