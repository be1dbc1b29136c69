"""Hands-free listening through the real PortAudio -> ALSA path: the test microphone plays three spoken
numbers separated by pauses over room noise; Listen sends exactly three queries, in order, and the demo
model finds each number among its first five images."""
import numpy as np
import pytest

from engine.bench.spoken_stream import spoken_stream
from engine.data.utterances import VAD_RATE
from engine.paths import DEFAULT_CHECKPOINT
from tests.studio.conftest import MIC_CLIP, MIC_RATE


@pytest.fixture
def three_numbers_on_the_microphone(test_microphone):
    """The capture device's file holds the stream (then long room noise: the device runs faster than real
    time and repeats its last buffer past the file's end); the usual clip comes back afterwards."""
    assert MIC_RATE == VAD_RATE
    stream = spoken_stream((42, 7, 93), pause_s=1.0, tail_s=30.0)
    MIC_CLIP.write_bytes(np.round(np.clip(stream.samples, -1, 1) * 32767).astype(np.int16).tobytes())
    yield stream
    test_microphone.tofile(MIC_CLIP)


def test_listening_sends_one_query_per_utterance_in_order(make_window, qtbot, three_numbers_on_the_microphone):
    window = make_window(checkpoint=str(DEFAULT_CHECKPOINT), gallery_source="builtin", gallery_size=300)
    qtbot.waitUntil(lambda: window.retrieval_panel.gallery_ready or bool(window.errors), timeout=120_000)
    assert not window.errors, window.errors
    panel, speech = window.retrieval_panel, window.retrieval_panel.speech
    assert speech.listen_button.isEnabled(), speech.listen_button.toolTip()
    heard, answers = [], []
    speech.heard.connect(heard.append)
    panel.results.shown.connect(answers.append)

    speech.listen_button.click()
    assert speech.hands_free.listening and not speech.record_button.isEnabled()
    qtbot.waitUntil(lambda: len(answers) >= 3, timeout=60_000)
    qtbot.wait(1500)                          # the rest of the file is room noise: nothing more is heard
    speech.listen_button.click()
    assert not speech.hands_free.listening and speech.record_button.isEnabled()

    assert len(heard) == 3 and len(answers) == 3
    for utterance, span in zip(heard, three_numbers_on_the_microphone.spans):
        assert utterance.start_s * VAD_RATE <= span[0] + 800 and utterance.end_s * VAD_RATE >= span[1] - 800
    # the right number among each answer's first five images: the query was the utterance, not noise or
    # a neighbour's tail (top-1 accuracy itself is measured by `nlmm bench robustness`, not here)
    top5 = [[hit.label for hit in answer.results["image"][:5]] for answer in answers]
    assert all(label in hits for label, hits in zip((42, 7, 93), top5)), top5
    assert all(answer.modality == "audio" for answer in answers)
