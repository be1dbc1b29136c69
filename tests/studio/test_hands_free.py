"""Hands-free listening through the real PortAudio -> ALSA path: the test microphone plays three spoken
numbers separated by pauses over room noise; Listen sends exactly three queries, in order, each answered
with the right number first.

The voices are drawn with seed 1, whose three clips the demo model answers right when asked directly: on
held-out voices it is ~93 % right, and "ninety-three" taken for "forty-three" is its most common slip (seed
0's voice is one). So a wrong top-1 here means listening broke the utterance, not that the model erred;
the model's own accuracy is `nlmm bench robustness`'s to measure."""
import numpy as np
import pytest

from engine.bench.spoken_stream import spoken_stream
from engine.data.utterances import TENTATIVE, VAD_RATE
from engine.paths import DEFAULT_CHECKPOINT
from tests.studio.conftest import MIC_CLIP, MIC_RATE


@pytest.fixture
def three_numbers_on_the_microphone(test_microphone):
    """The capture device's file holds the stream (then long room noise: the device runs faster than real
    time and repeats its last buffer past the file's end); the usual clip comes back afterwards."""
    assert MIC_RATE == VAD_RATE
    stream = spoken_stream((42, 7, 93), pause_s=1.0, tail_s=30.0, seed=1)
    MIC_CLIP.write_bytes(np.round(np.clip(stream.samples, -1, 1) * 32767).astype(np.int16).tobytes())
    yield stream
    test_microphone.tofile(MIC_CLIP)


def test_listening_sends_one_query_per_utterance_in_order(make_window, qtbot, monkeypatch,
                                                          three_numbers_on_the_microphone):
    window = make_window(checkpoint=str(DEFAULT_CHECKPOINT), gallery_source="builtin", gallery_size=300)
    qtbot.waitUntil(lambda: window.retrieval_panel.gallery_ready or bool(window.errors), timeout=120_000)
    assert not window.errors, window.errors
    panel, speech = window.retrieval_panel, window.retrieval_panel.speech
    assert speech.listen_button.isEnabled(), speech.listen_button.toolTip()
    heard, answers, shown = [], [], []
    speech.heard.connect(heard.append)
    # every answer handed to the results (the capture device runs faster than real time, so two may come
    # within the rows' 0.1 s and only the newer be drawn), and those drawn
    show_answer = panel.results.show_answer
    monkeypatch.setattr(panel.results, "show_answer",
                        lambda answer, description, asked=None: (answers.append((asked, answer)),
                                                                 show_answer(answer, description, asked)))
    panel.heard_answered.connect(lambda utterance, answer: shown.append(utterance))

    speech.listen_button.click()
    assert speech.hands_free.listening and not speech.record_button.isEnabled()
    qtbot.waitUntil(lambda: sum(u.kind != TENTATIVE for u in heard) >= 3, timeout=60_000)
    qtbot.wait(1500)                          # the rest of the file is room noise: nothing more is heard
    speech.listen_button.click()
    assert not speech.hands_free.listening and speech.record_button.isEnabled()

    ended = [u for u in heard if u.kind != TENTATIVE]
    asked = [u for u in heard if u.to_ask]
    assert len(ended) == 3 and len(asked) == 3, [(u.kind, u.start_s, u.end_s) for u in heard]
    for utterance, span in zip(ended, three_numbers_on_the_microphone.spans):
        assert utterance.start_s * VAD_RATE <= span[0] + 800 and utterance.end_s * VAD_RATE >= span[1] - 800
    # each asked utterance was answered, in order, with the right number first; the last is on screen
    qtbot.waitUntil(lambda: len(answers) == 3 and shown and shown[-1] is asked[-1], timeout=10_000)
    assert all(utterance is want for (utterance, _), want in zip(answers, asked))
    assert all(answer.modality == "audio" for _, answer in answers)
    top1 = [answer.results["image"][0].label for _, answer in answers]
    assert top1 == [42, 7, 93], [[hit.label for hit in answer.results["image"]] for _, answer in answers]
