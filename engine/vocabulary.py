"""The names the engine, the CLI and the studio share (modalities, pairs, directions, splits…), each defined once.

Imports nothing heavy (no torch), so the studio's UI thread reads it too.
"""
from __future__ import annotations

MODALITIES = ("text", "image", "audio")

# The pairs the contrastive loss trains, in its order; "image-text" names a pair's loss curve.
PAIRS = (("image", "text"), ("image", "audio"), ("text", "audio"))
PAIR_NAMES = tuple(f"{a}-{b}" for a, b in PAIRS)

# Retrieval directions (query -> gallery), in the order `nlmm eval` prints them; "image->text" names one.
DIRECTIONS = tuple((q, g) for q in ("image", "text", "audio") for g in ("image", "text", "audio") if q != g)
DIRECTION_NAMES = tuple(f"{q}->{g}" for q, g in DIRECTIONS)

# The keys of a batch the model reads: each modality's rows, its padding mask, and which batch
# position each row belongs to (items may miss modalities).
BATCH_KEYS = frozenset(f"{m}{suffix}" for m in MODALITIES for suffix in ("", "_mask", "_index"))

SPLITS = ("train", "val", "test")

# The gallery a query's label is answered from when one answer is scored (a bench's top-1, a correction
# given as a label): an image is read as a caption, a recording and a text as an image.
ANSWER_GALLERY = {"image": "text", "audio": "image", "text": "image"}

SAMPLE_RATE = 16000  # Hz: what the models hear (the audio config's default) and the built-in set's recordings

# The test-time learners a query stream may adapt (`engine/adaptation.py` says what each one changes).
ADAPTATION_MECHANISMS = ("memory_gated", "memory_delta", "hope", "cms_fast", "domain")
# What "adapt" does unless told otherwise (`nlmm query --adapt`, the studio's "Adapt memory"): the
# learners `nlmm bench ttt`'s ablation found helping, or at least not hurting (docs/test-time-training.md): on the
# conv-stem demo model the fast CMS level gains most on a speech engine never heard, at little clean cost.
DEFAULT_ADAPTATION = ("memory_gated", "cms_fast", "domain")
