"""Batch generation: a list of (audio, photo[, reference pose]) rows through ``Trainer.predict``.

Rows come from a CSV (header ``audio,photo[,reference_pose][,name]``; relative paths are relative to
the CSV's folder; ``name`` defaults to the audio's stem and must be unique) or a CSG-405
``test_pairs.json`` (:mod:`csg_lightning.csg405.test_pairs`: speech = the target clip's
``audio.wav``, photo = the first frame of the reference clip's ``video.mp4``, reference pose = its
``pose.npz``; rows named ``same/<target>`` and ``cross/<target>``, unavailable pairs left out).

:class:`RowsDataModule` serves one row per batch (Lightning's ``DistributedSampler`` splits the rows
over ``--trainer.devices`` processes); rows whose ``<out-dir>/<name>.mp4`` exists are left out, so a
re-run resumes. :class:`TalkingVideoPredictor` (a LightningModule holding both stages) generates a
row's skeletons in ``predict_step`` and returns the video frames lazily; :class:`RowWriter` (a
``BasePredictionWriter``) writes each row's four outputs atomically, streaming the frames into the mp4.
The resolved pipeline goes to ``<out-dir>/pipeline.config.yaml``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from csg_lightning.generation.pipeline_config import PipelineConfig, load_pipeline_config
from csg_lightning.generation.talking_inputs import Outputs, Request
from csg_lightning.generation.talking_video import TalkingVideo
from csg_lightning.io.validation import InputError, check_input_file

COLUMNS = ("audio", "photo", "reference_pose", "name")


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in ("audio", "photo") if c not in header]
        unknown = [c for c in header if c not in COLUMNS]
        if missing or unknown:
            raise InputError(f"--rows {path}: header {header}: expected columns audio, photo[, reference_pose]"
                             f"[, name]{f'; missing {missing}' if missing else ''}"
                             f"{f'; unknown {unknown}' if unknown else ''}")  # fmt: skip
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row.get("audio") or not row.get("photo"):
                raise InputError(f"--rows {path}: line {line}: expected an audio and a photo path")
            resolve = lambda p: str(p if Path(p).is_absolute() else path.parent / p)  # noqa: E731
            rows.append({"audio": resolve(row["audio"]), "photo": resolve(row["photo"]),
                         "reference_pose": resolve(row["reference_pose"]) if row.get("reference_pose") else None,
                         "name": row.get("name") or Path(row["audio"]).stem, "line": line})  # fmt: skip
    return rows


def _pair_rows(path: Path) -> list[dict]:
    try:
        pairs = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"--rows {path}: not valid JSON ({err})") from None
    if not isinstance(pairs, list):
        raise InputError(f"--rows {path}: expected a JSON list of test pairs (csg405 test_pairs.json)")
    rows, root = [], path.parent
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not {"target", "target_clip", "ref_clip"} <= set(pair):
            raise InputError(f"--rows {path}: item {i}: expected target, target_clip and ref_clip")
        if not pair.get("available", True):
            continue
        ref = root / pair["ref_clip"]
        rows.append({"audio": str(root / pair["target_clip"] / "audio.wav"), "photo": str(ref / "video.mp4"),
                     "reference_pose": str(ref / "pose.npz"),
                     "name": f"{'same' if pair.get('same_identity') else 'cross'}/{pair['target']}", "line": i})  # fmt: skip
    return rows


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a CSV or a test_pairs.json (see the module docstring); names must be unique."""
    path = check_input_file(path, "--rows")
    rows = _pair_rows(path) if path.suffix.lower() == ".json" else _csv_rows(path)
    seen: dict[str, int] = {}
    for row in rows:
        if row["name"] in seen:
            raise InputError(f"--rows {path}: name {row['name']!r} at line {row['line']} repeats line "
                             f"{seen[row['name']]}; expected unique names (add a name column)")  # fmt: skip
        seen[row["name"]] = row["line"]
    if not rows:
        raise InputError(f"--rows {path}: no rows")
    return rows


def request_of(row: dict, out_dir: str | os.PathLike) -> Request:
    return Request(row["audio"], row["photo"], str(Path(out_dir) / f"{row['name']}.mp4"), row["reference_pose"])


class RowsDataset(Dataset):
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


class RowsDataModule(L.LightningDataModule):
    """The rows still to do (``<out_dir>/<name>.mp4`` absent), one per batch."""

    def __init__(self, rows: list[dict], out_dir: str | os.PathLike) -> None:
        super().__init__()
        self.rows, self.out_dir = rows, Path(out_dir)

    def todo(self) -> list[dict]:
        return [r for r in self.rows if not Outputs.of(request_of(r, self.out_dir).out).done()]

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(RowsDataset(self.todo()), batch_size=1, collate_fn=lambda items: items[0])


class TalkingVideoPredictor(L.LightningModule):
    """Both stages as one LightningModule; ``predict_step(row)`` -> a :class:`Generated` (frames lazy)."""

    def __init__(self, chain: TalkingVideo, out_dir: str | os.PathLike, progress: bool = False) -> None:
        super().__init__()
        self.chain, self.out_dir, self.progress = chain, Path(out_dir), progress
        self.skeleton_model, self.video_model = chain.skeleton_model, chain.video_model  # moved by Lightning

    def predict_step(self, row: dict, batch_idx: int, dataloader_idx: int = 0):
        request = request_of(row, self.out_dir)
        if Outputs.of(request.out).done():  # finished by another process since the rows were listed
            return None
        where = f"--rows line {row['line']} ({row['name']}): "
        return self.chain.generate(self.chain.check(request, where=where), progress=self.progress)


class RowWriter(BasePredictionWriter):
    """Writes each row's outputs as its batch ends (atomically; the mp4 streamed, written last)."""

    def __init__(self) -> None:
        super().__init__(write_interval="batch")
        self.written: list[Path] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        if prediction is not None:
            self.written.append(pl_module.chain.write(prediction))


def run_batch(pipeline: str, overrides: list[str], rows_path: str, out_dir: str, trainer_options: list[str],
              progress: bool = True) -> list[Path]:  # fmt: skip
    """``csg generate --rows``: every row to ``out_dir`` through ``Trainer.predict`` (see the module docstring)."""
    import yaml

    config: PipelineConfig = load_pipeline_config(pipeline, overrides)
    rows = read_rows(rows_path)
    options = {"accelerator": "auto", "devices": 1, "logger": False, "enable_checkpointing": False,
               "enable_model_summary": False, "enable_progress_bar": progress}  # fmt: skip
    for item in trainer_options:
        key, value = item.split("=", 1)
        options[key] = yaml.safe_load(value)
    chain = TalkingVideo.load(config, device="cpu")  # Lightning moves it to each process's device
    writer = RowWriter()
    try:
        trainer = L.Trainer(callbacks=[writer], **options)
    except (TypeError, ValueError) as err:
        raise InputError(f"--trainer options {trainer_options}: {err}") from None
    if trainer.is_global_zero:
        from csg_lightning.io.atomic import atomic_path

        with atomic_path(Path(out_dir) / "pipeline.config.yaml") as tmp:
            tmp.write_text(chain.resolved_yaml(Request(f"(rows of {rows_path})", "(rows)", out_dir)))
    data = RowsDataModule(rows, out_dir)
    todo = len(data.todo())
    if trainer.is_global_zero:
        print(f"rows: {len(rows)} ({len(rows) - todo} done already, {todo} to generate) -> {out_dir}")
    if todo:
        trainer.predict(TalkingVideoPredictor(chain, out_dir), datamodule=data, return_predictions=False)
    return writer.written
