"""Hands-free listening cuts a stream into one utterance per spoken number, wherever the blocks end."""
import numpy as np
import pytest

from engine.bench.spoken_stream import spoken_stream
from engine.data.audio_augment import coloured_noise
from engine.data.utterances import CONFIRMED, TENTATIVE, VAD_RATE, Listener, UtteranceCutter, load_detector


@pytest.fixture(scope="module")
def detector():
    return load_detector()


@pytest.fixture(scope="module")
def stream():
    return spoken_stream((42, 7, 93, 18), pause_s=0.8, noise_db=-45.0)


def _feed(cutter, samples, sizes):
    found, at, i = [], 0, 0
    while at < len(samples):
        size = sizes[i % len(sizes)]
        found += cutter.feed(samples[at:at + size])
        at, i = at + size, i + 1
    return found


def _covers(utterance, span):
    start, end = int(utterance.start_s * VAD_RATE), int(utterance.end_s * VAD_RATE)
    return start <= span[0] + 0.05 * VAD_RATE and end >= span[1] - 0.05 * VAD_RATE


@pytest.mark.parametrize("sizes", [[512], [160], [1000, 37, 4096, 3]])
def test_each_spoken_number_is_one_utterance_whatever_the_block_sizes(detector, stream, sizes):
    cutter = UtteranceCutter(detector=detector)
    found = _feed(cutter, stream.samples, sizes)
    assert len(found) == len(stream.labels)
    for utterance, span in zip(found, stream.spans):
        assert _covers(utterance, span), (utterance.start_s, utterance.end_s, span)
        start = int(round(utterance.start_s * VAD_RATE))
        np.testing.assert_array_equal(utterance.waveform, stream.samples[start:start + len(utterance.waveform)])
        assert utterance.end_s - utterance.start_s < (span[1] - span[0]) / VAD_RATE + 0.5
    assert not cutter.speaking


@pytest.mark.parametrize("tentative", [False, True])
def test_room_noise_alone_a_click_and_a_short_burst_are_no_utterance(detector, stream, tentative):
    rng = np.random.default_rng(1)
    noise = coloured_noise(VAD_RATE * 5, 1.0, rng) * np.float32(10 ** (-40 / 20))
    noise[VAD_RATE * 2: VAD_RATE * 2 + 40] = 0.9          # a click
    burst = stream.samples[stream.spans[0][0]: stream.spans[0][0] + 1600]   # 100 ms of a voice
    noise[VAD_RATE * 4: VAD_RATE * 4 + len(burst)] += burst
    cutter = UtteranceCutter(detector=detector, tentative=tentative)
    assert _feed(cutter, noise, [512]) == []


def test_speech_longer_than_the_limit_is_cut_there(detector, stream):
    cutter = UtteranceCutter(detector=detector, max_seconds=0.3, min_speech_ms=50, pad_ms=0)
    found = _feed(cutter, stream.samples, [512])
    assert len(found) > len(stream.labels)
    assert max(len(u.waveform) for u in found) <= int(0.3 * VAD_RATE) + 512


def test_the_listener_thread_hands_over_the_same_utterances_in_order(detector, stream):
    cutter = UtteranceCutter(detector=detector)
    expected = _feed(cutter, stream.samples, [512])
    heard = []
    listener = Listener(heard.append, lambda message: pytest.fail(message))
    listener.cutter = UtteranceCutter(detector=detector)
    listener.start()
    int16 = np.round(np.clip(stream.samples, -1, 1) * 32767).astype(np.int16)
    for at in range(0, len(int16), 512):
        listener.push(int16[at:at + 512])
    listener.stop()
    assert not listener.running
    assert [t for u in heard for t in (u.start_s, u.end_s)] == pytest.approx(
        [t for u in expected for t in (u.start_s, u.end_s)], abs=0.05)


def test_a_listener_whose_detector_fails_says_so(stream):
    messages = []

    class Broken:
        def reset_states(self):
            pass

        def __call__(self, x, rate):
            raise RuntimeError("no detector")

    listener = Listener(lambda u: None, messages.append)
    listener.cutter = UtteranceCutter(detector=Broken())
    listener.start()
    listener.push(stream.samples[:2048])
    listener.stop()
    assert messages and "hands-free listening stopped" in messages[0] and "no detector" in messages[0]


def _feed_timed(cutter, samples):
    """Window by window, as a microphone delivers them: each utterance with the samples heard when it came."""
    found = []
    for at in range(0, len(samples), 512):
        found += [(utterance, cutter.heard) for utterance in cutter.feed(samples[at:at + 512])]
    return found


@pytest.mark.parametrize("sizes", [[160], [1000, 37, 4096, 3]])
def test_tentative_utterances_are_the_same_whatever_the_block_sizes(detector, stream, sizes):
    windows = _feed(UtteranceCutter(detector=detector, tentative=True), stream.samples, [512])
    blocks = _feed(UtteranceCutter(detector=detector, tentative=True), stream.samples, sizes)
    assert [(u.kind, u.start_s, u.end_s) for u in blocks] == [(u.kind, u.start_s, u.end_s) for u in windows]
    assert all(np.array_equal(a.waveform, b.waveform) for a, b in zip(blocks, windows))


def test_a_tentative_utterance_is_asked_at_the_first_quiet_window_then_confirmed(detector, stream):
    plain = _feed_timed(UtteranceCutter(detector=detector), stream.samples)
    told = _feed_timed(UtteranceCutter(detector=detector, tentative=True), stream.samples)
    assert [u.kind for u, _ in told] == [TENTATIVE, CONFIRMED] * len(stream.labels)
    tentative, confirmed = told[0::2], told[1::2]
    assert sum(u.to_ask for u, _ in told) == len(stream.labels), "a confirmed utterance is not asked again"
    for (first, first_heard), (then, then_heard), (final, final_heard), span in zip(tentative, confirmed, plain,
                                                                                  stream.spans):
        assert _covers(first, span)
        assert then.waveform is first.waveform and (then.start_s, then.end_s) == (first.start_s, first.end_s)
        # asked as soon as a window was quiet: the hangover (200 ms) is waited for only to confirm it
        assert first_heard - span[1] <= 0.15 * VAD_RATE
        assert final_heard - first_heard >= 0.2 * VAD_RATE - 512 and then_heard == final_heard


def test_speech_that_goes_on_after_a_tentative_cut_is_asked_again_whole(detector):
    # "seven", 150 ms of room noise, "three": quiet long enough to cut a tentative "seven", shorter than the
    # hangover, so the speech goes on and the utterance that ends is both numbers
    stream = spoken_stream((7, 3), pause_s=0.15, noise_db=-50.0, seed=2)
    found = _feed(UtteranceCutter(detector=detector, tentative=True, hangover_ms=400), stream.samples, [512])
    assert [u.kind for u in found] == [TENTATIVE, TENTATIVE, CONFIRMED]
    seven, both, ended = found
    assert _covers(seven, stream.spans[0]) and seven.end_s * VAD_RATE < stream.spans[1][0]
    assert _covers(both, (stream.spans[0][0], stream.spans[1][1])) and ended.waveform is both.waveform


def test_the_length_limit_reached_while_a_tentative_utterance_stands_confirms_it(detector):
    # the limit falls in the hangover after "forty two": that audio is not asked a second time as FINAL
    stream = spoken_stream((42,), noise_db=-50.0, seed=1)
    [first, _] = _feed(UtteranceCutter(detector=detector, tentative=True), stream.samples, [512])
    limit = first.end_s - first.start_s + 0.1
    found = _feed(UtteranceCutter(detector=detector, tentative=True, hangover_ms=400, max_seconds=limit),
                  stream.samples, [512])
    assert [u.kind for u in found] == [TENTATIVE, CONFIRMED] and found[1].waveform is found[0].waveform
