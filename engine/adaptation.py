"""Test-time adaptation: which learners change while unlabelled queries stream, and putting them back.

The learners (`ADAPTATION_MECHANISMS`; `nlmm bench ttt` measures each alone and together):
  memory_gated  central-memory writes by the trained gate and proposal networks (gated top-k)
  memory_delta  central-memory writes by one normalised delta-rule step of 1/2 ||a M - z||^2 on the top-k
  hope          HOPE's self-modifying q/k/v projections, W <- W (I - lr x x^T), applied at query time
  cms_fast      the query encoder's fastest CMS level: one SGD step per query on an unsupervised signal
  domain        the audio front end's domain memory (per-bin statistics of acoustic domains it meets)

The unsupervised signal of `cms_fast` is the entropy of the query's retrieval distribution over what the
other modality's gallery holds (softmax of cosine scores at the training temperature, summed per gallery
identity: the images of one number are one answer), minimised, as TENT does for classifiers. Why this
one: it needs no label and no decoder (the tiny model has none), it scores exactly what the user sees
(which answer comes first), and a shifted query's scores are flatter than a clean one's, so lowering the
entropy pulls it back towards one answer instead of between several. Its known failure is collapse onto
a few answers when it learns from queries it cannot read (harsh photos: top-1 43 % -> 9 %, clean 92 % ->
28 % in one pass): as EATA does, only confident queries teach (entropy below `reliable` x ln(answers)),
only the fastest level moves, and never further than `max_move` from its trained weights (unbounded, a
10 000-query stream cost the clean test 8.9 points); the drift is measured (`nlmm bench ttt --drift`).

`Adapter.reset()` restores every weight, slot and domain statistic bit for bit.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from engine.optim.reach import within_reach
from engine.vocabulary import ADAPTATION_MECHANISMS, MODALITIES

MEMORY_RULES = {"memory_gated": "gated_topk", "memory_delta": "l2_regression"}
# The slots' write rate for live queries: at the trained 0.5, 400 queries in fonts never seen cost 9.7
# points of top-1 (the gallery was embedded with the trained slots); at 0.05, about 1 (docs/test-time-training.md).
QUERY_MEMORY_LR = 0.05
# The fast level's step per confident query, chosen on validation shifts (Festival's and Kokoro's val voices,
# val clips in reverb and pink noise): 5e-3 was best or level on each; 1e-2 lost 0.5 on pink noise.
FAST_LEVEL_LR = 5e-3


def check_mechanisms(mechanisms) -> frozenset[str]:
    chosen = frozenset(mechanisms)
    unknown = sorted(chosen - set(ADAPTATION_MECHANISMS))
    if unknown:
        raise ValueError(f"unknown adaptation mechanism {', '.join(unknown)}; "
                         f"expected some of {', '.join(ADAPTATION_MECHANISMS)}")
    if len(chosen & set(MEMORY_RULES)) > 1:
        raise ValueError("choose one central-memory write rule: memory_gated or memory_delta, not both")
    return chosen


class Adapter:
    def __init__(self, model, mechanisms, memory_modalities=MODALITIES, cms_lr: float = FAST_LEVEL_LR,
                 temperature: float = 0.07, reliable: float = 0.4, hope_lr: float | None = None,
                 memory_lr: float | None = None, max_move: float | None = 0.05):
        """`memory_modalities`: which queries the memory rule writes from (the config's
        `ttt.write_modalities` in the studio; every modality in the ablation); `hope_lr`: the projections'
        rate at query time (default: the one they trained with, `hope.lr`); `memory_lr`: the slots' write
        rate (default: `ttt.lr`); `max_move`: how far the fast level may move from its trained weights,
        relative to their norm (None: unbounded)."""
        self.model, self.mechanisms = model, check_mechanisms(mechanisms)
        self.memory_modalities = set(memory_modalities)
        self.cms_lr, self.temperature, self.reliable, self.hope_lr = cms_lr, temperature, reliable, hope_lr
        self.memory_lr, self.max_move = memory_lr, max_move
        self.fast = min(model.cfg.cms_levels, key=lambda level: level.chunk_size).name   # the fastest level
        self._trained: dict[str, torch.Tensor] | None = None
        self._watched: list | None = None     # what weights_moved() looks at, once adapting began
        self.steps = self.skipped = 0

    @property
    def learns_online(self) -> bool:
        return "cms_fast" in self.mechanisms

    def _remember(self) -> None:
        if self._trained is None:
            self._trained = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    @contextlib.contextmanager
    def writing(self):
        """Inside, a forward pass writes: memory slots, HOPE projections and the domain memory, as chosen."""
        self._remember()
        model, memory = self.model, self.model.memory
        saved = memory.ttt_mode, memory.write_modalities, memory.ttt_lr, memory.max_move
        rule = next((MEMORY_RULES[m] for m in self.mechanisms if m in MEMORY_RULES), None)
        if rule is not None:
            memory.ttt_mode, memory.write_modalities, memory.adapting = rule, self.memory_modalities, True
            memory.ttt_lr = memory.ttt_lr if self.memory_lr is None else self.memory_lr
            memory.max_move = self.max_move
        if "audio" in model.encoders:
            model.encoders["audio"].domain.adapting = "domain" in self.mechanisms
        layers = model.self_modifying_layers()
        trained_rates = [layer.lr for layer in layers]
        for layer in layers:
            layer.adapting = "hope" in self.mechanisms
            layer.lr = layer.lr if self.hope_lr is None else self.hope_lr
        try:
            yield
        finally:
            model.set_adapting(memory=False, hope=False)
            memory.ttt_mode, memory.write_modalities, memory.ttt_lr, memory.max_move = saved
            for layer, rate in zip(layers, trained_rates):
                layer.lr = rate

    def fast_level_parameters(self, modality: str) -> dict[str, torch.nn.Parameter]:
        """The fastest level's tensors in `modality`'s encoder, by their name in the model."""
        return {f"encoders.{modality}.{name}": p for name, p in self.model.encoders[modality].named_parameters()
                if f".cms.levels.{self.fast}." in name}

    def learn(self, modality: str, inputs: dict, gallery: torch.Tensor, identities: torch.Tensor, autocast) -> float:
        """One step of the fast CMS level on the query's retrieval entropy over a gallery (N, D) whose rows
        show `identities` (N,), when the query is confident enough to teach; the forward reads but
        writes nothing. Returns the entropy."""
        self._remember()
        params = self.fast_level_parameters(modality)
        answers, index = torch.unique(identities, return_inverse=True)
        with torch.enable_grad():
            with autocast():
                embedding = self.model.encode(modality, inputs[modality], inputs.get(f"{modality}_mask")).float()
            p_item = F.softmax(embedding @ gallery.to(embedding.device).T / self.temperature, dim=-1)
            p = torch.zeros(len(p_item), len(answers), device=p_item.device).index_add(1, index.to(p_item.device), p_item)
            entropy = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
            if float(entropy.detach()) > self.reliable * math.log(max(len(answers), 2)):
                self.skipped += 1
                return float(entropy.detach())
            grads = torch.autograd.grad(entropy, list(params.values()))
        with torch.no_grad():
            for (name, param), grad in zip(params.items(), grads):
                param.sub_(self.cms_lr * grad.to(param.dtype))
                if self.max_move:   # however long the stream (unbounded, 10 000 queries cost 8.9 clean points)
                    param.copy_(within_reach(param, self._trained[name].to(param.dtype), self.max_move))
        self.steps += 1
        return float(entropy.detach())

    @torch.no_grad()
    def weights_moved(self) -> dict[str, dict[str, float]]:
        """How far the adapted weights moved since the last reset, relative to their trained norm, for a
        viewer: {"projections": {"audio 1 q": 0.004, ...}, "fast level": {"audio 1": 0.01, ...}} (the
        HOPE q/k/v projections of each block, the fastest CMS level of each block), for the learners
        chosen. Called after every query: only the watched tensors are looked at."""
        if self._trained is None:
            return {}
        if self._watched is None:
            self._watched = self._watch()
        moved: dict[str, dict[str, list[float]]] = {}
        for group, label, param, trained in self._watched:
            sums = moved.setdefault(group, {}).setdefault(label, [0.0, 0.0])
            sums[0] += float((param.float() - trained).pow(2).sum())
            sums[1] += float(trained.pow(2).sum())
        return {group: {label: (d / max(t, 1e-12)) ** 0.5 for label, (d, t) in labels.items()}
                for group, labels in moved.items()}

    def _watch(self) -> list[tuple[str, str, torch.Tensor, torch.Tensor]]:
        watched = []
        for name, param in self.model.named_parameters():
            parts = name.split(".")
            if parts[0] != "encoders" or "blocks" not in parts:
                continue
            block = f"{parts[1]} {int(parts[parts.index('blocks') + 1]) + 1}"
            if "hope" in self.mechanisms and parts[-2] in ("q_proj", "k_proj", "v_proj"):
                watched.append(("projections", f"{block} {parts[-2][0]}", param, self._trained[name].float()))
            elif "cms_fast" in self.mechanisms and f"levels.{self.fast}." in name:
                watched.append(("fast level", block, param, self._trained[name].float()))
        return watched

    @torch.no_grad()
    def rebase(self, names) -> None:
        """Weights `names` were changed outside test-time training (a correction): their values now are
        what `reset()` restores and what the fast level is kept near."""
        if self._trained is None:
            return
        state = self.model.state_dict()
        for name in names:
            self._trained[name] = state[name].detach().clone()
        self._watched = None

    @torch.no_grad()
    def reset(self) -> None:
        """Every weight and slot back to what it was before the first adapting query, bit for bit."""
        if self._trained is not None:
            self.model.load_state_dict(self._trained)
        self._trained = self._watched = None
        self.steps = self.skipped = 0
        self.model.reset_memory()
