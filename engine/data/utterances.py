"""Hands-free listening: a live microphone stream cut into utterances, each one a query.

The voice-activity detector is Silero VAD (PyPI `silero-vad`, MIT; the model ships inside the wheel): a
small recurrent network over 32 ms windows, trained on speech in many languages and noises. An energy +
zero-crossing gate opens on fans, keyboards and music and needs its threshold tuned to each room; Silero
needs neither, and costs well under a millisecond a window on one thread. Its streaming `VADIterator` says
where speech starts and ends; `UtteranceCutter` keeps the samples, pads and bounds each utterance, and
`Listener` runs the cutter on a thread of its own so that neither the audio callback nor a user
interface ever runs the network.

Deciding that speech has ended takes the hangover plus the few windows Silero's probability lingers after
a voice stops (~280 ms in all with the 200 ms hangover). A cutter made with `tentative=True` does not wait
for that to answer: at the first quiet window it hands over a TENTATIVE utterance (the speech may still go
on); if the speech goes on, the next quiet window brings a longer TENTATIVE one that replaces it, and once the hangover has passed
the last is CONFIRMED (that was the whole utterance: nothing new to ask). Speech too short at its first
quiet window is no utterance (a click, a cough) unless it goes on; speech cut at the length limit is
FINAL.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

VAD_RATE = 16000        # the detector's rate (it knows 8 and 16 kHz); the retriever resamples for the model
WINDOW = 512            # samples per detector window at 16 kHz (32 ms), the size Silero VAD was trained on

# what an utterance is, as the speech around it is known (see the module's notes)
TENTATIVE = "tentative"     # cut at the first quiet window: ask it now; the speech may go on
CONFIRMED = "confirmed"     # the last tentative utterance was the whole of it (the same waveform)
FINAL = "final"             # ended (or cut at the length limit), and not asked before as it is


@dataclass(frozen=True)
class Utterance:
    waveform: np.ndarray    # float32 mono at VAD_RATE, padded on both sides
    start_s: float          # where it starts and ends in the stream (seconds since listening began)
    end_s: float
    cut_at: float           # time.perf_counter() when it was cut
    kind: str = FINAL       # TENTATIVE, CONFIRMED or FINAL

    @property
    def to_ask(self) -> bool:
        """Whether this utterance is a new query (a confirmed one was asked when it was tentative)."""
        return self.kind != CONFIRMED


def load_detector():
    """Silero VAD's TorchScript model. Its package sets torch's thread count at import: put it back."""
    import torch
    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    finally:
        torch.set_num_threads(threads)
    return load_silero_vad()


class UtteranceCutter:
    """Feed it float32 mono blocks at VAD_RATE of any length; it returns each utterance once its speech ended.

    `hangover_ms`: silence that ends an utterance (shorter splits "for … ty" and "forty … two"; longer
    merges numbers said close together; with `tentative` it delays only the confirmation, not the answer);
    `pad_ms`: kept before and after the speech; utterances shorter than `min_speech_ms` (a click, a cough)
    are dropped, and speech longer than `max_seconds` is cut there and continues as a new utterance.
    `tentative`: also hand over TENTATIVE utterances at the first quiet window (then CONFIRMED or FINAL).
    """

    def __init__(self, hangover_ms: int = 200, pad_ms: int = 60, min_speech_ms: int = 150,
                 max_seconds: float = 4.0, threshold: float = 0.5, detector=None, tentative: bool = False):
        from silero_vad import VADIterator
        self.detector = detector if detector is not None else load_detector()
        self.iterator = VADIterator(self.detector, threshold=threshold, sampling_rate=VAD_RATE,
                                    min_silence_duration_ms=hangover_ms, speech_pad_ms=pad_ms)
        self.pad = int(VAD_RATE * pad_ms / 1000)
        self.min_speech = int(VAD_RATE * min_speech_ms / 1000)
        self.max_samples = int(VAD_RATE * max_seconds)
        self.tentative = tentative
        self.reset()

    def reset(self) -> None:
        self.iterator.reset_states()
        self._pending = np.zeros(0, dtype=np.float32)   # samples not yet a whole window
        self._history = np.zeros(0, dtype=np.float32)   # the stream since `_history_at`
        self._history_at = 0
        self._start: int | None = None                  # stream position where the current speech began
        self._asked: tuple[int, Utterance] | None = None  # the quiet window that cut the last tentative one, and it
        self.heard = 0                                  # samples given to the detector so far

    @property
    def speaking(self) -> bool:
        return self._start is not None

    def feed(self, samples: np.ndarray) -> list[Utterance]:
        from engine.threads import intra_op_threads
        with intra_op_threads(1):       # a 32 ms window is far too small to split across cores
            return self._feed(samples)

    def _feed(self, samples: np.ndarray) -> list[Utterance]:
        import torch
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, np.nan_to_num(samples)])
        whole = len(self._pending) // WINDOW * WINDOW
        if whole == 0:
            return []
        windows, self._pending = self._pending[:whole], self._pending[whole:]
        self._history = np.concatenate([self._history, windows])
        found = []
        for offset in range(0, whole, WINDOW):
            quiet_since = self.iterator.temp_end        # the first quiet window's end, 0 while speaking
            event = self.iterator(torch.from_numpy(windows[offset:offset + WINDOW]))
            self.heard += WINDOW
            if event and "start" in event:
                self._start, self._asked = int(event["start"]), None
            elif event and "end" in event and self._start is not None:
                if (standing := self._standing(quiet_since)) is not None:
                    found.append(replace(standing, kind=CONFIRMED, cut_at=time.perf_counter()))
                else:
                    found += self._cut(self._start, min(int(event["end"]), self.heard))
                self._start, self._asked = None, None
            elif self._start is not None and self.heard - self._start >= self.max_samples:
                if (standing := self._standing(self.iterator.temp_end)) is not None:
                    # quiet since its tentative cut: that was all of it (not the same audio asked again)
                    found.append(replace(standing, kind=CONFIRMED, cut_at=time.perf_counter()))
                else:
                    found += self._cut(self._start, self.heard)
                self._start, self._asked = self.heard, None
            elif self.tentative and self._start is not None and self.iterator.temp_end \
                    and (self._asked is None or self._asked[0] != self.iterator.temp_end):
                # the speech and its first quiet window, tried once: what is too short now (a click) is
                # left to the end, which drops it or asks it whole
                asked = self._cut(self._start, self.iterator.temp_end, TENTATIVE, trailing=WINDOW)
                self._asked = (self.iterator.temp_end, asked[0] if asked else None)
                found += asked
        self._forget()
        return found

    def _standing(self, quiet_since: int) -> Utterance | None:
        """The tentative utterance cut in the quiet spell that began at `quiet_since`, if one was (no speech
        since: VADIterator starts a new spell whenever the voice comes back)."""
        if self._asked is not None and quiet_since and self._asked[0] == quiet_since:
            return self._asked[1]
        return None

    def _cut(self, start: int, end: int, kind: str = FINAL, trailing: int | None = None) -> list[Utterance]:
        """`trailing`: the quiet samples after the speech in [start, end) (the padding, unless cut sooner)."""
        if end - start < self.min_speech + self.pad + (self.pad if trailing is None else trailing):
            return []
        lo, hi = max(0, start - self._history_at), end - self._history_at
        return [Utterance(self._history[lo:hi].copy(), start / VAD_RATE, end / VAD_RATE, time.perf_counter(), kind)]

    def _forget(self) -> None:
        """Keeps only what an utterance may still need: from its start (or the padding before one)."""
        keep_from = self._start if self._start is not None else self.heard - self.pad
        drop = max(0, keep_from - self.pad - self._history_at)
        if drop:
            self._history = self._history[drop:]
            self._history_at += drop


class Listener:
    """An UtteranceCutter on its own thread. `push` (any thread: the audio callback) queues int16 or float32
    mono blocks at VAD_RATE; `on_utterance(Utterance)` and `on_error(str)` are called on the listener's
    thread. `stop()` ends it once what was pushed before is heard; `stop(drain=False)` drops that backlog."""

    def __init__(self, on_utterance: Callable[[Utterance], None], on_error: Callable[[str], None] | None = None,
                 **cutter_options):
        self.on_utterance, self.on_error = on_utterance, on_error
        self.cutter_options = cutter_options
        self._blocks: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._abandon = threading.Event()
        self.cutter: UtteranceCutter | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._abandon.clear()
        self._thread = threading.Thread(target=self._run, name="nlmm-listener", daemon=True)
        self._thread.start()

    def push(self, block: np.ndarray) -> None:
        block = np.asarray(block)
        if block.dtype == np.int16:
            block = block.astype(np.float32) / 32768.0
        self._blocks.put(block.reshape(-1))

    def stop(self, drain: bool = True, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        if not drain:
            self._abandon.set()
        self._blocks.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        try:
            if self.cutter is None:
                self.cutter = UtteranceCutter(**self.cutter_options)
            self.cutter.reset()
            while (block := self._blocks.get()) is not None and not self._abandon.is_set():
                for utterance in self.cutter.feed(block):
                    self.on_utterance(utterance)
        except Exception as err:  # noqa: BLE001 - the listener stops and says why; the app goes on
            if self.on_error is not None:
                self.on_error(f"hands-free listening stopped: {type(err).__name__}: {err}")
