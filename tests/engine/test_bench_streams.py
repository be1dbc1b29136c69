"""The streams `nlmm bench ttt` adapts on ask every number equally often."""
from collections import Counter

from engine.bench.ttt import spread_over_numbers
from engine.data.builtin import NUM_LABELS, load_builtin_manifest, load_heldout


def test_every_stream_asks_every_number_equally_often():
    heldout = load_heldout()
    # the held-out engine's clips come voice by voice: every other clip alone kept only the even numbers
    for items in (heldout["speech_engine"], heldout["fonts"], load_builtin_manifest()["test"]):
        counts = Counter(item.label for item in spread_over_numbers(items, 400))
        assert set(counts) == set(range(NUM_LABELS)) and len(set(counts.values())) == 1


def test_a_stream_of_the_held_out_engine_keeps_several_of_its_voices():
    picked = spread_over_numbers(load_heldout()["speech_engine"], 400)
    assert len(picked) == 400 and len({item.source for item in picked}) >= 4
