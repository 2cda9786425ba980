"""`csg generate`: espeak-ng speech + a demo speaker's photo -> video, skeletons, skeleton video, config.

Tiny Stage-1 / Stage-2 checkpoints trained for a step through the real `csg fit` (tests/tiny_chain.py);
the pose estimator is the real DWPose ONNX backend on tiny ONNX files with known outputs
(tests/pose_onnx_models.py). Bad inputs exit naming the input; none leaves a half-written mp4.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from PIL import Image
from speech import speech_wav
from tiny_chain import pipeline_yaml, tiny_chain

from csg_lightning.cli import main as csg
from csg_lightning.generation.pipeline_config import load_pipeline_config
from csg_lightning.io.mp4 import read_frames
from csg_lightning.io.validation import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def chain(tmp_path_factory, demo_corpus_video, demo_shards_video):
    return tiny_chain(tmp_path_factory, demo_corpus_video, demo_shards_video)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    return speech_wav(tmp_path_factory.mktemp("speech") / "speech.wav")


def _generate(chain, audio, out, *extra, photo=None, pose: object = "given", pipeline=None):
    args = ["generate", "--pipeline", str(pipeline or chain.pipeline), "--audio", str(audio),
            "--photo", str(photo or chain.photo), "--out", str(out), "--quiet"]  # fmt: skip
    if pose is not None:
        args += ["--reference-pose", str(chain.reference_pose if pose == "given" else pose)]
    csg(args + [str(e) for e in extra])
    return Path(out)


def _refused(chain, audio, out, match: str, *extra, **kwargs):
    with pytest.raises(SystemExit, match=match) as info:
        _generate(chain, audio, out, *extra, **kwargs)
    assert not Path(out).exists() and not list(Path(out).parent.glob(".*tmp*")), "a refused run wrote files"
    return str(info.value)


def _nothing_half_written(folder: Path) -> None:
    assert not list(folder.glob(".*tmp*")), f"temporary files left in {folder}"


def test_generate_writes_video_skeletons_skeleton_video_and_config(chain, speech, tmp_path, capsys):
    out = _generate(chain, speech, tmp_path / "out" / "talk.mp4")
    assert "video:" in capsys.readouterr().out
    seconds = sf.info(str(speech)).duration
    skeleton_frames = round(seconds * 25)
    frames = read_frames(out)
    assert frames.shape == (math.ceil(skeleton_frames / 2), 32, 32, 3)  # demo Stage 2: every 2nd frame
    import av

    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        assert abs(float(container.duration) / 1e6 - seconds) < 0.2
        assert float(container.streams.video[0].average_rate) == 12.5
    skeletons = np.load(out.with_suffix(".npz"))
    assert skeletons["keypoints"].shape == (skeleton_frames, 134, 2) and int(skeletons["fps"]) == 25
    ref = np.load(chain.reference_pose)
    body = ref["scores"][:13] > 0.3
    error = np.abs(skeletons["keypoints"][0, :13][body] - ref["keypoints"][:13][body]).mean()
    assert error < 40, f"the first skeleton is {error:.1f} px from the photo's body: not in the photo's pixels"
    assert read_frames(out.with_suffix(".skeleton.mp4")).shape[:2] == (skeleton_frames, 512)
    again = load_pipeline_config(out.with_suffix(".config.yaml"))  # the resolved config reads back
    assert again.skeleton.steps == 2 and Path(again.video.checkpoint) == chain.video_checkpoint.resolve()
    _nothing_half_written(out.parent)


def test_anchored_skeletons_start_at_the_photos_pose(chain, speech, tmp_path):
    out = _generate(chain, speech, tmp_path / "anchored.mp4", "--skeleton.anchor_seconds", "1.0", "--align", "false")
    ref = np.load(chain.reference_pose)
    first = np.load(out.with_suffix(".npz"))["keypoints"][0]
    np.testing.assert_allclose(first, ref["keypoints"].reshape(-1, 134, 2)[0], atol=0.05)  # exactly, in photo pixels
    assert load_pipeline_config(out.with_suffix(".config.yaml")).skeleton.anchor_seconds == 1.0


def test_a_photo_of_another_size_maps_through_the_stage1_frame(chain, speech, tmp_path):
    """The same person 1.5x larger, off-centre on a 1100 x 800 canvas: the skeletons follow the photo."""
    scale, offset = 1.5, np.array([150.0, 20.0], np.float32)
    small = np.asarray(Image.open(chain.photo))
    canvas = np.full((800, 1100, 3), 40, np.uint8)
    big = np.asarray(Image.fromarray(small).resize((768, 768)))
    canvas[20:788, 150:918] = big
    Image.fromarray(canvas).save(tmp_path / "wide.png")
    ref = np.load(chain.reference_pose)
    np.savez(tmp_path / "wide.npz", keypoints=ref["keypoints"] * scale + offset, scores=ref["scores"])
    a = np.load(_generate(chain, speech, tmp_path / "a.mp4").with_suffix(".npz"))["keypoints"]
    b = np.load(_generate(chain, speech, tmp_path / "b.mp4", photo=tmp_path / "wide.png",
                          pose=tmp_path / "wide.npz").with_suffix(".npz"))["keypoints"]  # fmt: skip
    expected = a * scale + offset
    assert np.abs(b - expected).max() < 3.0, np.abs(b - expected).max()
    widths = np.ptp(b[..., 0], axis=1) / np.ptp(a[..., 0], axis=1)  # not 1100 / 512: no per-axis stretch
    assert np.allclose(widths, scale, atol=0.02), widths


@pytest.fixture(scope="module")
def estimators(chain, tmp_path_factory):
    """Estimator YAMLs over tiny DWPose ONNX files: one person, two of similar size, none."""
    from pose_onnx_models import constant_detector, constant_pose_model, to_letterbox

    root = tmp_path_factory.mktemp("estimators")
    k = np.arange(133)
    pose = constant_pose_model(root / "pose.onnx", 200 + (37 * k) % 180, 150 + (53 * k) % 400,
                               np.where(k >= 91, 1.2, 0.85).astype(np.float32))  # fmt: skip
    boxes = {"one": [(150.0, 60.0, 370.0, 500.0, 0.95, 0, 0.95)],
             "two": [(40.0, 80.0, 240.0, 480.0, 0.9, 0, 0.9), (270.0, 90.0, 460.0, 470.0, 0.95, 0, 0.95)],
             "none": None}  # fmt: skip
    out = {}
    for name, box in boxes.items():
        detector = (constant_detector(root / f"{name}.onnx", to_letterbox(box, 512, 512)) if box else
                    constant_detector(root / f"{name}.onnx", [(100, 100, 300, 300, 0.99, 7, 0.99)]))  # a truck
        spec = {"class_path": "csg_lightning.pose.dwpose_onnx.DWPoseONNX",
                "init_args": {"detector": str(detector), "pose": str(pose), "device": "cpu"}}  # fmt: skip
        out[name] = root / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(spec))
    return out


def test_the_estimator_finds_the_person_and_refuses_none_or_two(chain, speech, estimators, tmp_path):
    out = _generate(chain, speech, tmp_path / "est.mp4", "--estimator", estimators["one"], pose=None)
    assert out.is_file() and np.load(out.with_suffix(".npz"))["keypoints"].shape[1:] == (134, 2)
    _refused(chain, speech, tmp_path / "two.mp4", "people of similar size", "--estimator", estimators["two"],
             pose=None)  # fmt: skip
    _refused(chain, speech, tmp_path / "none.mp4", "no person found", "--estimator", estimators["none"], pose=None)
    message = _refused(chain, speech, tmp_path / "nopose.mp4", "--reference-pose", pose=None)
    assert "estimator: null" in message


def test_short_audio_is_refused_and_silence_and_stereo_44k_are_generated(chain, tmp_path):
    sf.write(tmp_path / "short.wav", np.zeros(int(0.6 * 16000), np.float32), 16000)
    _refused(chain, tmp_path / "short.wav", tmp_path / "short.mp4", r"0\.60 s of audio; expected at least 1 s")
    sf.write(tmp_path / "silent.wav", np.zeros(2 * 16000, np.float32), 16000)
    assert read_frames(_generate(chain, tmp_path / "silent.wav", tmp_path / "silent.mp4")).shape[0] == 25
    t = np.arange(int(1.5 * 44100)) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1)
    sf.write(tmp_path / "stereo.wav", stereo.astype(np.float32), 44100)
    out = _generate(chain, tmp_path / "stereo.wav", tmp_path / "stereo.mp4")
    assert np.load(out.with_suffix(".npz"))["keypoints"].shape[0] == round(1.5 * 25)


def test_a_tiny_photo_is_refused_and_a_huge_one_generated_in_its_pixels(chain, speech, tmp_path):
    small = Image.open(chain.photo)
    small.resize((40, 40)).save(tmp_path / "tiny.png")
    _refused(chain, speech, tmp_path / "tiny.mp4", "40x40 pixels; expected at least 64", photo=tmp_path / "tiny.png")
    factor = 9  # 4608 x 4608: worked at 4096, the outputs in the photo's pixels
    small.resize((512 * factor, 512 * factor), Image.NEAREST).save(tmp_path / "huge.png", compress_level=1)
    ref = np.load(chain.reference_pose)
    np.savez(tmp_path / "huge.npz", keypoints=(ref["keypoints"] + 0.5) * factor - 0.5, scores=ref["scores"])
    out = _generate(chain, speech, tmp_path / "huge.mp4", photo=tmp_path / "huge.png", pose=tmp_path / "huge.npz")
    a = np.load(_generate(chain, speech, tmp_path / "small.mp4").with_suffix(".npz"))["keypoints"]
    b = np.load(out.with_suffix(".npz"))["keypoints"]
    assert np.abs(b - ((a + 0.5) * factor - 0.5)).max() < 3.0 * factor


def test_pipeline_errors_name_the_yaml_field(chain, speech, tmp_path):
    where = str(chain.pipeline)
    for extra, field in [(["--skeleton.checkpoint", tmp_path / "nope.ckpt"], "skeleton.checkpoint"),
                         (["--video.checkpoint", tmp_path / "nope.ckpt"], "video.checkpoint"),
                         (["--video.tile_sise", "3"], "video.tile_sise"),
                         (["--video.steps", "0"], "video.steps"),
                         (["--skeleton.guidance", "loud"], "skeleton.guidance"),
                         (["--skeleton.anchor_seconds", "0"], "skeleton.anchor_seconds")]:  # fmt: skip
        message = _refused(chain, speech, tmp_path / "x.mp4", "field", *extra)
        assert field in message and where in message, message
    assert "file not found" in _refused(chain, speech, tmp_path / "x.mp4", "skeleton.checkpoint",
                                        "--skeleton.checkpoint", tmp_path / "nope.ckpt")  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), [({"fps": 30}, "is not a whole number"),
                                                  ({"num_keypoints": 18}, "expected the same skeleton layout")])  # fmt: skip
def test_checkpoints_that_do_not_chain_are_refused(chain, speech, tmp_path, change, expected):
    checkpoint = torch.load(chain.video_checkpoint, map_location="cpu", weights_only=True)
    checkpoint["datamodule_hyper_parameters"].update(change)
    torch.save(checkpoint, tmp_path / "other.ckpt")
    message = _refused(chain, speech, tmp_path / "x.mp4", expected, "--video.checkpoint", tmp_path / "other.ckpt")
    assert str(chain.skeleton_checkpoint) in message and "other.ckpt" in message


def _loaded(chain, **sections):
    from csg_lightning.generation.talking_video import TalkingVideo

    return TalkingVideo.load(load_pipeline_config(chain.pipeline, [f"{k}={v}" for k, v in sections.items()]))


def test_stage2_streams_segments_and_a_failure_leaves_no_mp4(chain, speech, tmp_path):
    from csg_lightning.generation.talking_inputs import Request

    talking = _loaded(chain, **{"video.segment_frames": 12, "video.segment_overlap": 2})
    calls = []
    sample = talking.video_model.sample_latents
    talking.video_model.sample_latents = lambda *a, **k: calls.append(1) or sample(*a, **k)
    request = Request(str(speech), str(chain.photo), str(tmp_path / "stream.mp4"), str(chain.reference_pose))
    generated = talking.generate(talking.check(request), progress=False)
    segments = math.ceil((generated.num_frames - 2) / 10)
    assert segments >= 4 and not calls, "Stage 2 ran before its frames were asked for"
    next(generated.frames)
    assert len(calls) == 1, "the first frame came only after more than one segment was generated"
    assert sum(1 for _ in generated.frames) == generated.num_frames - 1 and len(calls) == segments

    render, decoded = talking.video_model.render, []

    def failing(latents, reference, poses=None):  # the disk fills up / the GPU fails in the middle of the video
        if decoded:
            raise RuntimeError("device lost")
        decoded.append(1)
        return render(latents, reference, poses)

    talking.video_model.render = failing
    with pytest.raises(RuntimeError, match="device lost"):
        talking(request, progress=False)
    assert not (tmp_path / "stream.mp4").exists()
    _nothing_half_written(tmp_path)


def test_generate_video_takes_poses_in_a_stage1_frame(chain):
    """video.generate: ``pose_frame`` says which pixels the driving skeletons are in (the review item)."""
    from csg_lightning.checkpoints.safe_load import load_module
    from csg_lightning.video.generate import generate_video
    from csg_lightning.video.pose_frame import PoseFrame
    from csg_lightning.video.video_generator import VideoGenerator

    model = load_module(VideoGenerator, chain.video_checkpoint).eval()
    ref = np.load(chain.reference_pose)
    ref_kp, ref_sc = ref["keypoints"], ref["scores"]
    photo = np.asarray(Image.open(chain.photo).resize((700, 512)))  # another aspect
    ref_kp = ref_kp * np.array([700 / 512, 1.0], np.float32)
    frame = PoseFrame.around_person(ref_kp, ref_sc, 700, 512)
    assert np.allclose(frame.to_photo(frame.to_frame(ref_kp)), ref_kp, atol=1e-3)
    drive = np.repeat(frame.to_frame(ref_kp)[None], 3, 0), np.repeat(ref_sc[None], 3, 0)
    options = dict(model=model, reference_pose=(ref_kp, ref_sc), num_steps=2, seed=0)
    in_frame = generate_video(photo, drive, pose_frame=frame, **options)
    in_photo = generate_video(photo, (frame.to_photo(drive[0]), drive[1]), **options)
    assert np.array_equal(in_frame, in_photo)


def test_the_pipeline_yamls_load():
    demo = load_pipeline_config(ROOT / "experiments/pipeline/demo.yaml")
    assert demo.estimator is None and demo.skeleton.checkpoint.startswith("runs/skeleton-demo/latest/")
    csg405 = load_pipeline_config(ROOT / "experiments/pipeline/csg405.yaml")
    assert csg405.estimator["class_path"].endswith("DWPoseONNX")
    assert csg405.estimator["init_args"]["pose"].startswith("weights/dwpose/")
    assert csg405.video.checkpoint.startswith("runs/video-mimicmotion/latest/")
    # tile overlaps MimicMotion's fusion cannot use are refused before anything runs, naming the field
    for overlap, size in ((0, 16), (16, 16)):
        with pytest.raises(InputError, match=r"demo\.yaml.*field 'video\.tile_overlap'.*expected"):
            load_pipeline_config(ROOT / "experiments/pipeline/demo.yaml",
                                 [f"video.tile_overlap={overlap}", f"video.tile_size={size}"])  # fmt: skip
    assert load_pipeline_config(ROOT / "experiments/pipeline/demo.yaml", ["video.tile_overlap=15"]).video.tile_overlap == 15


def test_pipeline_yaml_with_its_own_sections(chain, speech, tmp_path):
    """A pipeline YAML written by hand (no overrides): frame_stride 1 makes a 25 fps video."""
    pipeline = pipeline_yaml(tmp_path / "p.yaml", chain.skeleton_checkpoint, chain.video_checkpoint,
                             video={"steps": 1, "frame_stride": 1, "tile_size": 0, "segment_frames": 200})  # fmt: skip
    out = _generate(chain, speech, tmp_path / "s1.mp4", pipeline=pipeline)
    assert len(read_frames(out)) == round(sf.info(str(speech)).duration * 25)
