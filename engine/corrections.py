"""Corrections: the user points at the right answer of a query, and the model learns it at once.

A correction is one labelled query: what was asked (its prepared input), in which modality, and which
identity of another modality's gallery is the right answer. `CorrectionMemory.learn()` takes it in a few
milliseconds, on the query thread, with no run folder and no training thread, by two learners together:

  slots        the corrected query's embedding is written as a key into a store of the user's examples,
               its value the right identity. A later query close to a key has that identity's score raised
               (a soft nearest-neighbour vote): what was taught is answered right again at once.
  encoder      one Adam step (STEPS) of the query modality's encoder and head on the correction, replaying
               a sample of the earlier corrections (an image replayed in a shifted view, as queries are
               read), with built-in items as anchors: their embeddings are held where the trained model
               put them; then the weights are pulled back a little toward their trained values
               (PULL_BACK), so that moves cannot pile up. The style of the user's
               writing or voice is learnt, so numbers never corrected benefit too, while the other skills stay.
               With image corrections of numbers, each step also shows numbers written in the user's own
               digits, cut from the corrections held (COMPOSED, `engine.user_digits`).

While nothing else runs, `consolidate()` replays what is held for a few more steps (image corrections: up to
CONSOLIDATION_STEPS each), as a slower level carries on what the fast one took in at once.

`nlmm bench corrections` measures them (alone and together: docs/corrections.md). `reset()` restores the
model bit for bit; `forget(i)` drops one correction and learns the rest again from the trained weights.
`state()` holds everything (corrections, keys, weights moved, optimiser, sampling) and `restore()` carries
on from it; `save_memory_file` / `load_memory_file` keep it on disk.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.data.errors import DataError
from engine.optim.levels import can_fuse
from engine.training.checkpoint import load_payload, save_payload, state_digest
from engine.vocabulary import MODALITIES

# The learners a correction runs (`CORRECTION_LEARNERS`); both by default (docs/corrections.md).
CORRECTION_LEARNERS = ("slots", "encoder")
# Chosen on the corrections bench's shifts (docs/corrections.md): one step is what fits in 100 ms.
STEPS = 1              # Adam steps per correction
# Their rate on the encoder's weights, by the query's modality: an image step, with the numbers in the
# user's digits, learns more per step, and at 3e-4 it moved the built-in test by over a point.
LR = {"text": 3e-4, "image": 2e-4, "audio": 3e-4}
# Earlier corrections of the same modality replayed with each new one, by the query's modality: a clip's
# rows cost more than an image's, and 11 keep an audio correction inside 100 ms (docs/corrections.md).
REPLAY = {"text": 15, "image": 8, "audio": 11}
# Numbers written in the user's own digits (engine.user_digits) shown with each image correction.
COMPOSED = 8
COMPOSED_WEIGHT = 1.0   # their loss's weight beside the corrections
IN_USER_DIGITS = "in the user's digits"   # how such a number's row is shown
# Consolidation: while nothing else runs, replay steps of the corrections held (each led by one drawn at
# random), up to CONSOLIDATION_STEPS per correction held, of the CONSOLIDATED query modalities only: the
# one step a correction gets at once leaves a handwriting half learnt, and replaying it while the user looks
# at the answer carries it further (for recordings it cost the taught numbers' other clips 12-22 points:
# their replayed clips are the same clips every time). docs/corrections.md.
CONSOLIDATED = ("image",)
CONSOLIDATION_STEPS = 2
# Built-in items held in place per step, by the query's modality: an image step's numbers in the user's
# digits move the encoder further, and 16 hold the built-in test within a point (docs/corrections.md).
ANCHORS = {"text": 8, "image": 16, "audio": 8}
ANCHOR_WEIGHT = 40.0   # how strongly (1 - cosine to the trained embedding)
# After each step, this share of every weight's move from its trained value is undone: a correction's
# trace fades over a few hundred later ones unless replayed, so the moves cannot pile up (docs/corrections.md).
PULL_BACK = 0.01
TEMPERATURE = 0.1      # of the correction's loss over the gallery's answers
SLOT_SHARPNESS = 80.0  # a key's vote: exp(SLOT_SHARPNESS * (cos - 1)), ~1 at the key, ~0.02 at cos 0.95
SLOT_WEIGHT = 0.5      # the largest score a vote adds (scores are cosines in [-1, 1])
FORMAT = "nlmm-corrections"
VERSION = 1


@dataclass
class Correction:
    """One taught answer. `inputs` is the prepared query (a model batch of one row, on the CPU)."""
    modality: str                 # what was asked: text, image or audio
    target: str                   # the gallery the right answer is in
    identity: int                 # the right answer's identity in that gallery (its label)
    label: str                    # how it is shown
    name: str                     # the query as shown: a file name, "recording", the text
    inputs: dict[str, torch.Tensor]
    seconds: float = 0.0          # how long learning it took
    key: torch.Tensor | None = field(default=None, repr=False)   # its embedding when taught (slots)
    digits: list | None = field(default=None, repr=False)   # the written digits cut from it (engine.user_digits)
    written: bool = False         # a number written in the user's digits for one step, not a held correction


class CorrectionMemory:
    """The user's corrections and what they changed, beside a model that answers queries."""

    def __init__(self, model, learners=CORRECTION_LEARNERS, anchors=None, steps: int = STEPS,
                 lr: float | dict[str, float] = LR,
                 replay: int | dict[str, int] = REPLAY, anchor_weight: float = ANCHOR_WEIGHT, parts: str = "encoder",
                 autocast=contextlib.nullcontext, seed: int = 0, composed: int = COMPOSED):
        """`anchors`: a callable modality -> model batch of built-in inputs of that modality (or None when
        there are none); their trained embeddings are what the encoder is held to. `parts`: which weights
        learn, "encoder" (the modality's encoder and head), "front" (its front end: patch stem, audio
        convolutions, token embedding), "front+1" (and the first block) or "fast" (its fastest CMS level).
        `composed`: numbers in the user's own digits per image step (0: none)."""
        unknown = sorted(set(learners) - set(CORRECTION_LEARNERS))
        if unknown:
            raise ValueError(f"unknown correction learner {', '.join(unknown)}; "
                             f"expected some of {', '.join(CORRECTION_LEARNERS)}")
        self.model, self.learners = model, frozenset(learners)
        self.anchor_source, self.steps, self.lr, self.replay = anchors, steps, lr, replay
        self.anchor_weight, self.parts, self.autocast = anchor_weight, parts, autocast
        self.composed = composed
        self.corrections: list[Correction] = []
        self._trained: dict[str, torch.Tensor] = {}     # weights as trained, of modalities a correction moved
        self._optimisers: dict[str, torch.optim.Optimizer] = {}
        self._anchors: dict[str, tuple[dict, torch.Tensor] | None] = {}
        self._rng = random.Random(seed)
        self.seed = seed
        self.consolidated = 0     # consolidation steps taken since the corrections last changed
        self._moved: dict | None = None   # weights_moved() since the corrections last changed

    # ------------------------------------------------------------------ what learns
    def parameters(self, modality: str) -> dict[str, torch.nn.Parameter]:
        """The weights a correction of a `modality` query moves, by their name in the model (`parts`)."""
        fast = min(self.model.cfg.cms_levels, key=lambda level: level.chunk_size).name
        out = {}
        for name, param in self.model.named_parameters():
            parts = name.split(".")
            if parts[0] == "heads" and parts[1] == modality:
                if self.parts == "encoder":
                    out[name] = param
                continue
            if parts[:2] != ["encoders", modality]:
                continue
            block = int(parts[3]) if parts[2] == "blocks" else None
            front = block is None and parts[2] not in ("position", "norm")
            if (self.parts == "encoder" or (self.parts == "front" and front)
                    or (self.parts == "front+1" and (front or block == 0))
                    or (self.parts == "fast" and f".cms.levels.{fast}." in name)):
                out[name] = param
        return out

    def replayed(self, modality: str) -> int:
        """How many earlier corrections a step of a `modality` query replays (`replay`: one for all or by modality)."""
        return self.replay if isinstance(self.replay, int) else self.replay[modality]

    def rate(self, modality: str) -> float:
        """The Adam rate of a `modality` query's step (`lr`: one for all or by modality)."""
        return self.lr if isinstance(self.lr, (int, float)) else self.lr[modality]

    def batch_size(self, modality: str = "image") -> int:
        """Rows of one step of a `modality` query: the correction, those replayed with it and the anchors."""
        return 1 + self.replayed(modality) + ANCHORS[modality] + (self.composed if modality == "image" else 0)

    def _optimiser(self, modality: str) -> torch.optim.Optimizer:
        if modality not in self._optimisers:
            params = self.parameters(modality)
            for name, param in params.items():
                self._trained.setdefault(name, param.detach().clone())
            weights = list(params.values())
            self._optimisers[modality] = torch.optim.Adam(weights, lr=self.rate(modality), fused=can_fuse(weights))
        return self._optimisers[modality]

    def _anchor_batch(self, modality: str):
        """Built-in inputs of `modality` and their trained embeddings (computed once, before any step)."""
        if modality not in self._anchors:
            batch = self.anchor_source(modality) if self.anchor_source is not None else None
            if batch is None:
                self._anchors[modality] = None
            else:
                with torch.no_grad(), self.autocast():
                    trained = self.model.encode(modality, batch[modality], batch.get(f"{modality}_mask")).float()
                self._anchors[modality] = (batch, trained)
        return self._anchors[modality]

    # ------------------------------------------------------------------ learning
    def learn(self, correction: Correction, gallery: torch.Tensor, identities: torch.Tensor) -> Correction:
        """Learn one correction against the target gallery's rows (N, D) and their identities (N,).
        Returns it with `seconds` and, for the slots, its key filled in."""
        if correction.modality not in MODALITIES or correction.target not in MODALITIES:
            raise ValueError(f"a correction needs a query and a gallery modality, got "
                             f"{correction.modality!r} -> {correction.target!r}")
        if correction.modality == correction.target:
            raise ValueError("a correction's right answer is in another modality's gallery than the query's")
        if not bool((identities == correction.identity).any()):
            raise ValueError(f"'{correction.label}' is not in the {correction.target} gallery")
        start = time.perf_counter()
        self.corrections.append(correction)
        self._moved = None
        if "encoder" in self.learners:
            self._steps(correction, gallery, identities)
        if "slots" in self.learners:   # the key: the query as it is read now, so that asked again it is found
            correction.key = self._embedding(correction)
        correction.seconds = time.perf_counter() - start
        return correction

    def _loss(self, modality: str, rows: list[Correction], gallery: torch.Tensor, identities: torch.Tensor):
        """The loss of one step. The corrections and the anchors go through the encoder as one batch."""
        inputs = _stack([c.inputs for c in rows], modality)
        if modality == "image":
            inputs = {"image": _replayed_views(inputs["image"], self._rng)}
        anchors = self._anchor_batch(modality) if self.anchor_weight > 0 else None
        if anchors is not None:
            batch, trained = anchors
            pick = self._rng.sample(range(len(trained)), min(ANCHORS[modality], len(trained)))
            inputs = _stack([inputs, {k: v[pick] for k, v in batch.items() if k.startswith(modality)}], modality)
        with self.autocast():
            embedding = self.model.encode(modality, inputs[modality], inputs.get(f"{modality}_mask")).float()
        embedding, held = embedding[: len(rows)], embedding[len(rows):]
        answers, index = torch.unique(identities, return_inverse=True)
        logits = embedding @ gallery.to(embedding.device).T / TEMPERATURE
        # an answer's score is its best row's, as the top-1 reads it
        per_answer = torch.full((len(rows), len(answers)), -math.inf, device=logits.device)
        per_answer = per_answer.scatter_reduce(1, index.to(logits.device).expand(len(rows), -1), logits,
                                               reduce="amax", include_self=True)
        target = torch.tensor([int((answers == c.identity).nonzero()[0]) for c in rows], device=logits.device)
        losses = F.cross_entropy(per_answer, target, reduction="none")
        # the corrections weigh as much as without numbers in the user's digits, which come on top
        composed = torch.tensor([c.written for c in rows], device=losses.device)
        loss = losses[~composed].mean() + (COMPOSED_WEIGHT * losses[composed].mean() if bool(composed.any()) else 0.0)
        if anchors is not None:
            loss = loss + self.anchor_weight * (1 - (held * trained[pick]).sum(-1)).mean()
        return loss

    def _steps(self, correction: Correction, gallery, identities, steps: int | None = None) -> None:
        """`steps` steps on the correction, a sample of the other ones held and numbers in the user's digits."""
        modality = correction.modality
        optimiser = self._optimiser(modality)
        earlier = [c for c in self.corrections
                   if c is not correction and c.modality == modality and c.target == correction.target]
        params = self.parameters(modality)
        with torch.enable_grad():
            for _ in range(self.steps if steps is None else steps):
                rows = [correction] + self._rng.sample(earlier, min(self.replayed(modality), len(earlier)))
                rows += self._in_user_digits(correction, earlier, identities)
                optimiser.zero_grad(set_to_none=True)
                loss = self._loss(modality, rows, gallery, identities)
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    for name, param in params.items():
                        param.lerp_(self._trained[name], PULL_BACK)

    def consolidation_due(self) -> int:
        """Consolidation steps still to take (0 when the encoder does not learn)."""
        if "encoder" not in self.learners:
            return 0
        held = sum(c.modality in CONSOLIDATED for c in self.corrections)
        return max(0, CONSOLIDATION_STEPS * held - self.consolidated)

    def consolidate(self, gallery_of, steps: int = 1) -> int:
        """Up to `steps` of the steps due (`consolidation_due`), each led by a correction held drawn at random
        (`gallery_of(target)` -> (rows, identities) of its gallery). Returns how many were taken."""
        taken, budget = 0, min(steps, self.consolidation_due())
        while taken < budget:
            lead = self._rng.choice([c for c in self.corrections if c.modality in CONSOLIDATED])
            rows, identities = gallery_of(lead.target)
            self._steps(lead, rows, identities, steps=1)
            self.consolidated += 1
            taken += 1
        if taken:
            self._moved = None
        return taken

    def _in_user_digits(self, correction: Correction, earlier: list[Correction], identities) -> list[Correction]:
        """For an image correction, `composed` numbers of the gallery written in the digits cut from the
        image corrections held (engine.user_digits), as corrections of their own; none for other queries."""
        if correction.modality != "image" or self.composed <= 0:
            return []
        from engine.user_digits import composable, cut, is_number, write
        digits: dict[str, list] = {}
        for held in [correction] + earlier:
            if held.digits is None:
                held.digits = cut(held.inputs["image"][0], held.label) if is_number(held.label, held.identity) else []
            for digit, piece in held.digits:
                digits.setdefault(digit, []).append(piece)
        numbers = composable(sorted(set(identities.tolist())), digits) if digits else []
        if not numbers:
            return []
        device, cfg = correction.inputs["image"].device, self.model.cfg.image
        out = []
        for number in (self._rng.choice(numbers) for _ in range(self.composed)):
            try:
                image = write(number, digits, self._rng, cfg)
            except DataError:   # pieces that came out as one flat block of ink: not a number to learn
                continue
            out.append(Correction("image", correction.target, number, str(number), IN_USER_DIGITS,
                                  {"image": image[None].to(device)}, written=True))
        return out

    @torch.no_grad()
    def _embedding(self, correction: Correction) -> torch.Tensor:
        """The corrected query's embedding as a query is read (an image as the mean of its shifted views)."""
        from engine.query_views import encode_image_queries
        inputs, modality = correction.inputs, correction.modality
        with self.autocast():
            key = (encode_image_queries(self.model, inputs["image"]) if modality == "image" else
                   self.model.encode(modality, inputs[modality], inputs.get(f"{modality}_mask"))).float()[0]
        return F.normalize(key, dim=-1).cpu()

    # ------------------------------------------------------------------ answering
    @torch.no_grad()
    def adjust(self, modality: str, embedding: torch.Tensor, scores: torch.Tensor,
               identities: torch.Tensor) -> torch.Tensor:
        """A query's scores (N,) over a gallery whose rows show `identities` (N,), with the slots' votes
        added: each key of a correction of a query of the same modality adds up to SLOT_WEIGHT to the rows
        of its identity (in any gallery: galleries built together share identities), by how close the query
        is to the key."""
        if "slots" not in self.learners:
            return scores
        held = [c for c in self.corrections if c.modality == modality and c.key is not None]
        if not held:
            return scores
        keys = torch.stack([c.key for c in held])
        votes = torch.exp(SLOT_SHARPNESS * (keys @ F.normalize(embedding.float(), dim=-1).cpu() - 1))
        # each answer of the gallery gets its best key's vote, in one scatter (with 500 held, a loop over
        # the answers took 1.9 ms of a ~10 ms query, this 0.3 ms)
        answers, row_answer = torch.unique(identities.cpu(), return_inverse=True)
        taught = torch.tensor([c.identity for c in held], dtype=answers.dtype)
        where = torch.searchsorted(answers, taught).clamp(max=len(answers) - 1)
        shown = answers[where] == taught        # keys whose answer this gallery holds
        bonus = torch.zeros(len(answers)).scatter_reduce(0, where[shown], votes[shown], reduce="amax")
        return scores + (SLOT_WEIGHT * bonus[row_answer]).to(scores.device, scores.dtype)

    # ------------------------------------------------------------------ undo
    @torch.no_grad()
    def reset(self) -> None:
        """Every correction gone; the model's weights back to what they were, bit for bit."""
        params = dict(self.model.named_parameters())
        for name, value in self._trained.items():
            params[name].copy_(value)
        self._trained, self._optimisers, self.corrections, self._moved = {}, {}, [], None
        self._rng = random.Random(self.seed)
        self.consolidated = 0

    def forget(self, index: int, gallery_of, progress=None) -> Correction:
        """Drop correction `index` and learn the others again from the trained weights, in their order
        (`gallery_of(target)` -> (rows, identities) of that gallery). Returns the dropped correction."""
        if not 0 <= index < len(self.corrections):
            raise ValueError(f"no correction {index + 1}: {len(self.corrections)} held")
        kept = list(self.corrections)
        dropped = kept.pop(index)
        self.reset()
        for n, correction in enumerate(kept):
            rows, identities = gallery_of(correction.target)
            self.learn(correction, rows, identities)
            if progress is not None:
                progress(n + 1, len(kept))
        return dropped

    @contextlib.contextmanager
    def as_trained(self):
        """Inside, the weights the corrections moved are as trained: galleries are embedded so, whenever
        they are built, since a correction changes how the user's queries are read, not the reference."""
        params = dict(self.model.named_parameters())
        if not self._trained:
            yield
            return
        with torch.no_grad():
            corrected = {name: params[name].detach().clone() for name in self._trained}
            for name, value in self._trained.items():
                params[name].copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in corrected.items():
                    params[name].copy_(value)

    def moved_names(self) -> list[str]:
        """The weights the corrections may have moved (since the first of each modality)."""
        return list(self._trained)

    @torch.no_grad()
    def weights_moved(self) -> dict[str, dict[str, float]]:
        """How far each corrected modality's weights moved from their trained values, per block and head,
        relative to their trained norm: {"image": {"block 1": 0.004, "head": 0.01, ...}}. Measured once
        after each change of the corrections (a viewer asks after every query)."""
        if self._moved is not None:
            return self._moved
        params = dict(self.model.named_parameters())
        sums: dict[str, dict[str, list[float]]] = {}
        for name, trained in self._trained.items():
            parts = name.split(".")
            modality = parts[1]
            where = f"block {int(parts[parts.index('blocks') + 1]) + 1}" if "blocks" in parts else \
                "head" if parts[0] == "heads" else "front end"
            pair = sums.setdefault(modality, {}).setdefault(where, [0.0, 0.0])
            pair[0] += float((params[name].detach().float() - trained.float()).pow(2).sum())
            pair[1] += float(trained.float().pow(2).sum())
        self._moved = {m: {w: (d / max(t, 1e-12)) ** 0.5 for w, (d, t) in parts.items()} for m, parts in sums.items()}
        return self._moved

    # ------------------------------------------------------------------ keeping
    def state(self) -> dict:
        """Everything needed to carry on where this left off: plain tensors, numbers and strings (it loads
        with weights_only). The weights as trained are named by a digest, so that the file can only be used
        with the model it was made on."""
        params = dict(self.model.named_parameters())
        return {"format": FORMAT, "version": VERSION, "learners": sorted(self.learners), "parts": self.parts,
                "corrections": [{"modality": c.modality, "target": c.target, "identity": c.identity,
                                 "label": c.label, "name": c.name, "seconds": c.seconds,
                                 "inputs": {k: v.cpu() for k, v in c.inputs.items()},
                                 "key": c.key} for c in self.corrections],
                "weights": {name: params[name].detach().cpu().clone() for name in self._trained},
                "trained_digest": state_digest(self._trained),
                "optimisers": {m: opt.state_dict() for m, opt in self._optimisers.items()},
                "sampling": list(self._rng.getstate()[1]), "consolidated": self.consolidated}

    @torch.no_grad()
    def restore(self, state: dict) -> None:
        """Carry on from `state()`'s output, on the model it was made on (anything held now is reset first).
        A ValueError says why a state does not fit this model; nothing changes then."""
        self.reset()
        params = dict(self.model.named_parameters())
        unknown = sorted(set(state["weights"]) - set(params))
        if unknown:
            raise ValueError(f"the corrections were made on another model (this one has no {unknown[0]})")
        for name, value in state["weights"].items():
            if params[name].shape != value.shape:
                raise ValueError(f"the corrections were made on another model ({name} is "
                                 f"{tuple(value.shape)} there, {tuple(params[name].shape)} here)")
        if state_digest({name: params[name] for name in state["weights"]}) != state["trained_digest"]:
            raise ValueError("the corrections were made on another model (its weights differ from this one's)")
        corrections = [Correction(c["modality"], c["target"], int(c["identity"]), str(c["label"]), str(c["name"]),
                                  dict(c["inputs"]), float(c["seconds"]), c["key"]) for c in state["corrections"]]
        for modality in sorted({name.split(".")[1] for name in state["weights"]}):
            self._optimiser(modality)
            self._anchor_batch(modality)     # held where the trained weights put them, as before the first
        for modality, saved in state["optimisers"].items():
            self._optimiser(modality).load_state_dict(saved)
        for name, value in state["weights"].items():
            params[name].copy_(value.to(params[name].device))
        self._moved = None
        if "sampling" in state:   # what is replayed and the anchors drawn go on as they would have
            self._rng.setstate((3, tuple(int(v) for v in state["sampling"]), None))
        self.corrections = corrections
        self.consolidated = int(state.get("consolidated", 0))


def _replayed_views(images: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """A step's images: the new correction as given, each replayed one moved as one of a query's shifted
    views is (engine.query_views), drawn afresh each time it is replayed: the same writing seen at another
    place on the patches, as queries are read (docs/corrections.md)."""
    from engine.query_views import SHIFTS, shifted_views
    views = shifted_views(images).unflatten(0, (len(images), len(SHIFTS)))
    pick = [SHIFTS.index((0, 0))] + [rng.randrange(len(SHIFTS)) for _ in range(len(images) - 1)]
    return views[torch.arange(len(images)), torch.tensor(pick)]


def _stack(batches: list[dict[str, torch.Tensor]], modality: str) -> dict[str, torch.Tensor]:
    """One-row model batches of one modality -> one batch, padded as the data set's collate pads them
    (text tokens and log-mel frames along their last axis, with the mask saying what is real)."""
    rows = [b[modality] for b in batches]
    mask_key = f"{modality}_mask"
    if modality == "image":
        return {modality: torch.cat(rows)}
    width = max(r.shape[-1] for r in rows)
    masks = [b[mask_key] if mask_key in b else torch.ones(r.shape[0], r.shape[-1], dtype=torch.bool, device=r.device)
             for b, r in zip(batches, rows)]
    return {modality: torch.cat([F.pad(r, (0, width - r.shape[-1])) for r in rows]),
            mask_key: torch.cat([F.pad(m, (0, width - m.shape[-1])) for m in masks])}


class CorrectionsFileError(ValueError):
    """A corrections file that cannot be used; the message names the file and the problem."""


def save_memory_file(path: str | os.PathLike, state: dict) -> Path:
    """Written atomically (temp file, fsync, rename): a crash or kill mid-write leaves the last good file."""
    return save_payload(path, state, CorrectionsFileError, "corrections file")


def memory_file_for(checkpoint: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Where the corrections made on `checkpoint` are kept in `folder`: named by the checkpoint's name and
    content, so that each model finds its own (and a retrained file at the same path starts afresh)."""
    checkpoint = Path(checkpoint)
    digest = hashlib.sha256()
    with checkpoint.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return Path(folder) / f"{checkpoint.stem}-{digest.hexdigest()[:16]}.corrections.pt"


def load_memory_file(path: str | os.PathLike) -> dict:
    path = Path(path)
    state = load_payload(path, CorrectionsFileError, "corrections file")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CorrectionsFileError(f"{path}: not an NLMM corrections file (no '{FORMAT}' marker)")
    if state.get("version", 0) > VERSION:
        raise CorrectionsFileError(f"{path}: written by a newer NLMM (format version {state['version']})")
    missing = [k for k in ("corrections", "weights", "trained_digest", "optimisers") if k not in state]
    if missing:
        raise CorrectionsFileError(f"{path}: incomplete corrections file (no '{missing[0]}')")
    return state
