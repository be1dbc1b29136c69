"""Corrections: a query the user labels is learnt at once, changes what that user's queries answer and
nothing else, can be forgotten one by one or all at once (bit for bit), and is kept in a file that a
crash never leaves half-written."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.corrections import CorrectionsFileError, load_memory_file
from engine.data.builtin import load_builtin_manifest, load_heldout
from engine.data.dataset import Item
from engine.paths import DEFAULT_CHECKPOINT
from engine.retrieval import Retriever

ROOT = Path(__file__).resolve().parents[2]


def one_per_label(split="test"):
    seen, items = set(), []
    for i in load_builtin_manifest()[split]:
        if i.label not in seen:
            seen.add(i.label)
            items.append(Item(image=i.image, text=i.text, audio=i.audio, label=i.label, key=str(i.label)))
    return items


@pytest.fixture(scope="module")
def gallery():
    return one_per_label()


@pytest.fixture(scope="module")
def misread(gallery):
    """Held-out font images the shipped model reads wrong (image -> caption), with their labels."""
    retriever = Retriever.from_checkpoint(DEFAULT_CHECKPOINT, "cpu")
    retriever.build_gallery(gallery)
    wrong = []
    for item in load_heldout()["fonts"]:
        top = retriever.query("image", item.image, k=1, targets=["text"]).results["text"][0]
        if top.label != item.label:
            wrong.append((str(item.image), item.label))
        if len(wrong) == 6:
            break
    assert len(wrong) == 6
    return wrong


def fresh(gallery):
    retriever = Retriever.from_checkpoint(DEFAULT_CHECKPOINT, "cpu")
    retriever.build_gallery(gallery)
    return retriever


def teach(retriever, cases):
    for path, label in cases:
        answer = retriever.query("image", path, k=1)
        retriever.correct(answer.query_id, "text", retriever.identity_of("text", label))


def top_label(retriever, modality, value, target):
    return retriever.query(modality, value, k=1, targets=[target]).results[target][0].label


def test_a_correction_is_answered_right_at_once_and_other_modalities_answer_as_before(gallery, misread):
    retriever = fresh(gallery)
    clip, text = gallery[7].audio, "forty two"
    before = {m: retriever.query(m, v, k=5) for m, v in (("audio", clip), ("text", text))}
    path, label = misread[0]
    answer = retriever.query("image", path, k=3)
    assert answer.results["text"][0].label != label
    learnt = retriever.correct(answer.query_id, "text", retriever.identity_of("text", label))
    assert learnt.latest == 0 and learnt.held[0].label == str(label) and learnt.held[0].modality == "image"
    assert learnt.seconds > 0 and learnt.moved["image"]       # which parts of the image encoder it wrote
    assert top_label(retriever, "image", path, "text") == label
    # the other modalities read exactly as before: a correction of an image moves how images are read only
    for modality, value in (("audio", clip), ("text", text)):
        after = retriever.query(modality, value, k=5)
        assert torch.equal(torch.from_numpy(after.embedding), torch.from_numpy(before[modality].embedding))
        # (an image gallery is fixed when built: what changed is how image *queries* are read)
        assert [h.label for h in after.results["image"]] == [h.label for h in before[modality].results["image"]]


def test_a_label_may_be_a_caption_and_a_wrong_one_is_named(gallery, misread):
    retriever = fresh(gallery)
    assert retriever.identity_of("text", "forty two") == 42 == retriever.identity_of("text", "42")
    with pytest.raises(ValueError, match="'cat' is not an answer of the text gallery"):
        retriever.identity_of("text", "cat")
    with pytest.raises(ValueError, match="no longer held"):
        retriever.correct(10_000, "text", 3)


def test_reset_restores_the_model_bit_for_bit_and_forget_equals_never_taught(gallery, misread):
    retriever = fresh(gallery)
    loaded = {k: v.clone() for k, v in retriever.model.state_dict().items()}
    teach(retriever, misread[:3])
    assert len(retriever.corrections.corrections) == 3
    retriever.forget_correction(1)
    held = [c.name for c in retriever.corrections.corrections]
    assert held == [misread[0][0], misread[2][0]]

    other = fresh(gallery)
    teach(other, [misread[0], misread[2]])
    for (name, a), b in zip(retriever.model.state_dict().items(), other.model.state_dict().values()):
        assert torch.equal(a, b), name

    retriever.reset_memory()
    assert not retriever.corrections.corrections
    for name, value in retriever.model.state_dict().items():
        assert torch.equal(value, loaded[name]), name
    assert top_label(retriever, "image", misread[0][0], "text") != misread[0][1]


def test_corrections_are_kept_in_a_file_and_carry_on_exactly(gallery, misread, tmp_path):
    retriever = fresh(gallery)
    teach(retriever, misread[:2])
    path = retriever.save_corrections(tmp_path / "corrections.pt")
    assert load_memory_file(path)["format"] == "nlmm-corrections"

    again = fresh(gallery)
    held = again.load_corrections(path)
    assert [h.label for h in held.held] == [str(label) for _, label in misread[:2]]
    for (name, a), b in zip(retriever.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    # both go on alike: the optimiser's state and the sampling of what is replayed came back too
    teach(retriever, misread[2:3])
    teach(again, misread[2:3])
    for (name, a), b in zip(retriever.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_bad_corrections_file_is_one_line_and_changes_nothing(gallery, misread, tmp_path):
    retriever = fresh(gallery)
    teach(retriever, misread[:1])
    good = retriever.save_corrections(tmp_path / "good.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(good.read_bytes()[:1000])
    junk = tmp_path / "junk.pt"
    torch.save({"something": torch.zeros(2)}, junk)
    other = Retriever.from_checkpoint(DEFAULT_CHECKPOINT, "cpu")
    other.build_gallery(gallery)
    with torch.no_grad():
        other.model.encoders["image"].blocks[0].norm.weight.add_(0.01)   # another model of the same shape
    state = {k: v.clone() for k, v in other.model.state_dict().items()}
    for path, message in ((tmp_path / "none.pt", "not found"), (broken, "not a readable corrections file"),
                          (junk, "not an NLMM corrections file"), (good, "made on another model")):
        with pytest.raises((CorrectionsFileError, ValueError), match=message):
            other.load_corrections(path)
        assert not other.corrections.corrections
        for name, value in other.model.state_dict().items():
            assert torch.equal(value, state[name]), (path, name)


KEEP_SAVING = """
import sys, torch
from engine.corrections import save_memory_file
state = {"format": "nlmm-corrections", "version": 1, "corrections": [], "weights": {},
         "trained_digest": "", "optimisers": {}, "padding": torch.zeros(4_000_000)}
print("saving", flush=True)
n = 0
while True:
    state["padding"].fill_(n)
    save_memory_file(sys.argv[1], state)
    n += 1
"""


def test_a_kill_while_saving_leaves_the_last_good_file(tmp_path):
    path = tmp_path / "corrections.pt"
    proc = subprocess.Popen([sys.executable, "-c", KEEP_SAVING, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "saving"
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.7)      # several writes in, one under way
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = load_memory_file(path)
    padding = state["padding"]
    assert bool((padding == padding[0]).all())    # one whole write, never a mix of two
    assert not [p for p in os.listdir(tmp_path) if p != "corrections.pt" and not p.startswith(".corrections.pt.")]


def test_nlmm_query_learns_each_label_after_answering_and_writes_the_memory(misread, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "".join(f"{path},{label}\n" for path, label in misread[:2]))
    memory = tmp_path / "mine.pt"
    files = [path for path, _ in misread[:3]]
    code = main(["query", "--image", *files, "--correct", str(labels), "--memory-out", str(memory), "--k", "1",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["corrected"] for line in lines] == [True, True, False]
    assert [line["results"][0]["label"] for line in lines[:2]] != [label for _, label in misread[:2]]
    assert all(line["learn_ms"] > 0 for line in lines[:2])
    assert "2 corrections written" in err and memory.is_file()
    assert "4 consolidation steps" in err and load_memory_file(memory)["consolidated"] == 4   # two per image
    # the same queries again, starting from the memory: now answered right
    code = main(["query", "--image", *files[:2], "--memory", str(memory), "--k", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err and "2 corrections from" in err
    assert [json.loads(line)["results"][0]["label"] for line in out.splitlines()] == [label for _, label in misread[:2]]


def test_nlmm_query_names_a_bad_labels_file(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nsome.png\n")
    code = main(["query", "--image", "some.png", "--correct", str(labels)])
    assert code == 2
    assert "line 2: expected 'file,label'" in capsys.readouterr().err


def test_a_folder_gallery_shows_and_takes_the_users_own_labels(tmp_path, capsys):
    """A folder's JSON said "label": 0 for an item labelled "bird"; a correction may name "bird" too."""
    test = load_builtin_manifest()["test"]
    names = {3: "bird", 7: "cat"}
    rows = [f"{i.image},{i.text},,{names[i.label]},test" for label in names for i in
            [i for i in test if i.label == label][:3]]
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "items.csv").write_text("image,text,audio,label,split\n" + "\n".join(rows) + "\n")
    query = next(i for i in test if i.label == 7 and str(i.image) not in "".join(rows))
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,label\n{query.image},cat\n")
    code = main(["query", "--gallery", str(folder), "--image", str(query.image), "--k", "2", "--json",
                 "--correct", str(labels)])
    out, err = capsys.readouterr()
    assert code == 0, err
    line = json.loads(out)
    assert {r["label"] for r in line["results"]} <= {"bird", "cat"} and line["corrected"] and line["label"] == "cat"


def test_image_corrections_also_teach_numbers_in_the_users_own_digits(gallery):
    """Corrections of 42 and 17 in one hand: each step also shows numbers never corrected, written only
    in that hand's 4, 2, 1 and 7 (engine.user_digits)."""
    import numpy as np
    from PIL import Image
    from engine.corrections import IN_USER_DIGITS
    from engine.data.printed import compose, handwriting_styles
    retriever = fresh(gallery)
    memory, shown = retriever.corrections, []
    learn_step = memory._loss
    def watched(modality, rows, *args):
        shown.append([(row.identity, row.name) for row in rows])
        return learn_step(modality, rows, *args)
    memory._loss = watched
    atlas, rng = handwriting_styles()["DkgHandwriting Roman"], np.random.default_rng(0)
    for label in (42, 17, 42, 17):
        answer = retriever.query("image", Image.fromarray(compose(label, atlas, rng)), k=1, targets=["text"])
        retriever.correct(answer.query_id, "text", retriever.identity_of("text", label))
    composed = [identity for step in shown for identity, name in step if name == IN_USER_DIGITS]
    assert len(composed) == 4 * memory.composed
    assert set(composed) - {42, 17} and all(set(str(n)) <= set("4217") for n in composed)
    assert [c.label for c in memory.corrections] == ["42", "17", "42", "17"]   # they are not held as corrections


def test_consolidation_replays_image_corrections_while_idle_and_is_kept_with_them(gallery, misread, tmp_path):
    from engine.corrections import CONSOLIDATION_STEPS
    retriever = fresh(gallery)
    assert retriever.consolidate(5) == 0                     # nothing held, nothing to do
    teach(retriever, misread[:2])
    answer = retriever.query("audio", gallery[3].audio, k=1)   # a recording's correction is not consolidated
    retriever.correct(answer.query_id, "image", retriever.identity_of("image", gallery[3].label))
    assert retriever.corrections.consolidation_due() == CONSOLIDATION_STEPS * 2
    before = {k: v.clone() for k, v in retriever.model.state_dict().items()}
    assert retriever.consolidate(1) == 1
    moved = [k for k, v in retriever.model.state_dict().items() if not torch.equal(v, before[k])]
    assert moved and all(k.startswith(("encoders.image", "heads.image")) for k in moved), moved
    assert retriever.consolidate(100) == CONSOLIDATION_STEPS * 2 - 1 and retriever.consolidate(1) == 0
    for path, label in misread[:2]:
        assert top_label(retriever, "image", path, "text") == label

    # kept in the corrections file with what it changed; a new correction makes more steps due
    again = fresh(gallery)
    again.load_corrections(retriever.save_corrections(tmp_path / "corrections.pt"))
    assert again.corrections.consolidation_due() == 0
    for (name, a), b in zip(retriever.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    teach(again, misread[2:3])
    assert again.corrections.consolidation_due() == CONSOLIDATION_STEPS
    again.reset_memory()
    assert again.corrections.consolidation_due() == 0 and again.corrections.consolidated == 0
