"""The synthetic, offline, deterministic demo corpus (``csg-data demo``).

Procedural speakers talk in speech-like audio, and their 134-point whole-body motion is caused by
that audio (beats at stressed syllables, hand height following pitch, the jaw following loudness,
nods at phrase starts); each clip is also rendered as a simple figure video. It exists so that
the whole pipeline trains and runs offline in minutes; it is no substitute for CSG-405.

speaker.py (who), speech.py (audio + events), motion.py / face.py / hand.py (clean pose),
confidence.py (estimator-like keypoints and scores), figure.py (rendering), generate.py (clip folders).
"""

from __future__ import annotations

from csg_lightning.data.corpus.generate import Clip, generate_corpus, make_clip

__all__ = ["Clip", "generate_corpus", "make_clip"]
