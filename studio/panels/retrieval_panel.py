"""Retrieval: query the model with an image (drop, paste, open, or drawn on the sketch pad), a recording,
hands-free listening, an audio file or text, and see the top-k of every other modality with thumbnails,
captions, scores and a play button. "Teach" fine-tunes the model in use on that data set
(studio/panels/teach_box.py).

Marking a result row as the right one (✓), or typing the right answer, is a correction: the model learns
it at once (engine/corrections.py) and keeps it; the Memory panel lists what it holds.

"Adapt memory" makes each query also adapt the model (test-time training, by the learners the Learners
menu chose) — the Memory panel shows what moved; "Reset memory" undoes it all. "Add to my data set" appends
what was dropped or recorded (with the text box as its caption) to a folder data set. Each query is a
task of the host's retrieval session; its answer or error comes back on that task.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from engine.data.utterances import TENTATIVE, VAD_RATE
from studio import audio_capture
from studio.dialogs import AUDIO_FILTER, CHECKPOINT_FILTER, IMAGE_FILTER
from studio.panels.dataset_adder import DatasetAdder
from studio.panels.drop_zone import ImageInput
from studio.panels.gallery_picker import GalleryPicker
from studio.panels.model_status import ModelStatus
from studio.panels.query_options import QueryOptions, TextInput
from studio.panels.results_view import ResultsView
from studio.panels.sketch_pad import SketchInput
from studio.panels.speech_input import SpeechInput
from studio.panels.teach_box import TeachBox

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"}


class RetrievalPanel(QWidget):
    load_checkpoint_requested = Signal(str)
    gallery_requested = Signal(dict)        # {"source", "split", "limit"}
    teach_requested = Signal(dict)          # {"folder", "checkpoint", "steps"}: fine-tune the model in use
    model_taught = Signal(str)              # the checkpoint a Teach run left in use
    heard_answered = Signal(object, object)  # an Utterance heard hands-free, and the QueryAnswer now shown for it
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None, file_dialogs=None, settings=None):
        super().__init__(parent)
        self.setObjectName("retrievalPanel")
        self.dialogs, self.settings = file_dialogs, settings
        self.session = None                     # the host's retrieval session
        self.model_ready = self.gallery_ready = False
        self.model_path: str | None = None      # the checkpoint in use (what Teach fine-tunes)
        self._gallery_before = False            # a gallery answered before the one being built
        self.last_query: dict | None = None     # what "add to my data set" would add

        # ----- model & gallery status
        self.status = ModelStatus()
        self.model_label, self.load_button, self.cancel_button = (self.status.label, self.status.load_button,
                                                                  self.status.cancel_button)
        self.load_button.clicked.connect(self._choose_checkpoint)
        self.cancel_button.clicked.connect(lambda: self.gallery_task is not None and self.gallery_task.cancel())
        self.gallery_task = None                # the gallery being embedded, while it is
        self.gallery_picker = GalleryPicker(file_dialogs=file_dialogs, settings=settings)
        self.gallery_picker.requested.connect(self.request_gallery)

        images, text_box = self._make_query_inputs()
        options = self._make_options()

        left = QVBoxLayout()
        left.addLayout(images, 2)
        left.addWidget(self.speech, 2)
        left.addWidget(text_box)
        left.addWidget(options)
        left.addWidget(self.dataset)
        left.addWidget(self.teach)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(520)
        self.results = ResultsView()
        self.results.play_reason = self.speech.play_reason
        self.results.play_requested.connect(self.play)
        self.results.shown_asked.connect(self.heard_answered)     # only utterances are passed as `asked`
        self.results.correction_requested.connect(self.correct)
        self.results.label_given.connect(self.correct_label)
        body = QHBoxLayout()
        body.addWidget(left_widget, 0)
        body.addWidget(self.results, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.gallery_picker)
        layout.addLayout(body, 1)

        paste = QShortcut(QKeySequence.Paste, self, context=Qt.WidgetWithChildrenShortcut)
        paste.activated.connect(self.paste)
        self.record_shortcut = QShortcut(QKeySequence(Qt.Key_Space), self, context=Qt.WidgetWithChildrenShortcut)
        self.record_shortcut.activated.connect(self.speech.toggle_recording)
        self._update_enabled()

    def _make_query_inputs(self):
        """The image box and sketch pad, the speech input and the text box, wired to the queries. Returns
        (the row of image inputs, the text box)."""
        self.image_box = image_box = ImageInput()
        self.drop_zone, self.open_image_button, self.paste_button = (image_box.drop_zone, image_box.open_button,
                                                                     image_box.paste_button)
        self.drop_zone.file_dropped.connect(self.query_file)
        self.drop_zone.image_dropped.connect(self.query_qimage)
        self.open_image_button.clicked.connect(lambda: self._open(IMAGE_FILTER, "Open an image"))
        self.paste_button.clicked.connect(self.paste)
        self.sketch = SketchInput()
        self.sketch.pad.sketched.connect(self.query_sketch)
        images = QHBoxLayout()
        images.addWidget(image_box, 1)
        images.addWidget(self.sketch, 1)
        self.speech = SpeechInput(self.settings)
        self.speech.recorded.connect(self._recorded)
        self.speech.heard.connect(self._heard)
        self.speech.open_requested.connect(lambda: self._open(AUDIO_FILTER, "Open an audio file"))
        self.speech.message.connect(self.show_error)
        text_box = TextInput()
        self.text, self.search_button = text_box.text, text_box.search_button
        self.text.returnPressed.connect(self.query_text)
        self.search_button.clicked.connect(self.query_text)
        return images, text_box

    def _make_options(self) -> QueryOptions:
        """k, "adapt memory" and its learners, "add to my data set" and Teach."""
        options = QueryOptions()
        self.k, self.adapt, self.reset_button = options.k, options.adapt, options.reset_button
        self.options = options
        self.reset_button.clicked.connect(self.reset_memory)
        options.learners_changed.connect(self._choose_learners)
        self.dataset = DatasetAdder(self.dialogs, self.settings)
        self.dataset.add_requested.connect(self.add_to_dataset)
        self.dataset.added.connect(lambda message: (self.results.clear_error(), self.message.emit(message)))
        self.dataset.failed.connect(self.show_error)
        self.dataset.path.textChanged.connect(self._update_enabled)
        self.teach = TeachBox()
        self.teach.teach_requested.connect(self._teach)
        self.teach_run = None                   # the Teach run going, while it is
        self.teach.stop_requested.connect(lambda: self.teach_run is not None and self.teach_run.stop())
        self.teach.adopted.connect(self._adopted)
        self.teach.failed.connect(self.show_error)
        return options

    def attach(self, session) -> None:
        self.session = session

    def check_audio(self) -> None:
        """Record / play availability again (a microphone plugged in)."""
        self.speech.check_audio()
        self.results.play_reason = self.speech.play_reason

    def _update_enabled(self) -> None:
        ready = self.model_ready and self.gallery_ready
        for widget in (self.search_button, self.open_image_button, self.paste_button, self.speech.open_button):
            widget.setEnabled(ready)
        self.search_button.setToolTip("Search with the text (Enter)" if ready else
                                      "Load a model first" if not self.model_ready else
                                      "Wait for the gallery to be embedded")
        folder = self.dataset.path.text().strip()
        self.teach.set_ready(ready and bool(folder) and self.model_path is not None,
                             "Load a model first (and wait for its gallery)" if not ready else
                             "Choose the folder of your data set (Add to my data set)")

    # ------------------------------------------------------------------ model & gallery
    def _choose_checkpoint(self) -> None:
        path = self.dialogs.open_file(self, "Load a checkpoint", CHECKPOINT_FILTER)
        if path:
            self.load_checkpoint_requested.emit(path)

    def loading(self, path: str, task) -> None:
        """A checkpoint is loading (`task` -> ModelLoaded)."""
        self.model_ready = self.gallery_ready = self._gallery_before = False
        self.status.say(f"Loading {path}…")
        self._update_enabled()
        task.result.connect(self._model_loaded)
        task.error.connect(lambda message: (self.status.say(f"No model loaded: {message}"), self.show_error(message)))

    def no_model(self, reason: str) -> None:
        self.model_ready = self.gallery_ready = False
        self.status.say(reason)
        self._update_enabled()

    def _model_loaded(self, loaded) -> None:
        if loaded.note:
            self.message.emit(loaded.note)
        self.model_ready = True
        self.model_path = loaded.path
        audio = loaded.config["audio"]
        self.speech.set_format(audio["sample_rate"], audio["max_seconds"])
        self.status.model_loaded(loaded)
        self.status.gallery("embedding the gallery…")
        self._update_enabled()

    def request_gallery(self, choice: dict) -> None:
        """"Use gallery": embed the picked items (the current gallery answers until they are ready)."""
        if not self.model_ready:
            self.show_error("Load a model first: the gallery is embedded with it")
            return
        problem = self.gallery_picker.problem()
        if problem:
            self.show_error(problem)
            return
        self.gallery_requested.emit(choice)

    def building_gallery(self, task) -> None:
        """A gallery is being embedded (`task` -> GalleryReady): progress, Cancel, then the outcome."""
        self._gallery_before = self._gallery_before or self.gallery_ready
        self.gallery_ready = False
        self.status.gallery("embedding the gallery…")
        self._update_enabled()
        self.gallery_task = task
        task.finished.connect(lambda: self.gallery_task is task and setattr(self, "gallery_task", None))
        task.progress.connect(self.status.embedding)
        task.result.connect(self._gallery_ready)
        task.error.connect(lambda message: (self.show_error(message), self._gallery_not_built("not built")))
        task.cancelled.connect(lambda: self._gallery_not_built("cancelled"))

    def _gallery_ready(self, ready) -> None:
        self.gallery_ready = self._gallery_before = True
        self.status.gallery_ready(ready)
        self._update_enabled()

    def _gallery_not_built(self, what: str) -> None:
        """A cancelled or failed build leaves the previous gallery (if any) in use."""
        self.gallery_ready = self._gallery_before and self.model_ready
        self.status.gallery_not_built(what, self.gallery_ready)
        self._update_enabled()

    # ------------------------------------------------------------------ queries
    def _send(self, modality: str, value, description: str, asked=None, adapt: bool | None = None):
        """The query's task (None when there is nothing to ask yet); its answer is shown when it comes
        (with `asked`, the Utterance it answers, for `heard_answered`). `adapt`: as "Adapt memory" says."""
        if self.session is None or not (self.model_ready and self.gallery_ready):
            self.show_error("Load a model first (and wait for its gallery)")
            return None
        self.results.searching(modality, description)
        adapt = self.adapt.isChecked() if adapt is None else adapt
        task = self.session.query(modality, value, k=self.k.value(), adapt=adapt)
        task.result.connect(lambda answer: self.results.show_answer(answer, description, asked))
        task.error.connect(self._query_failed)
        return task

    def _query_failed(self, message: str) -> None:
        self.results.failed(message)
        self.message.emit(message)

    def query_text(self):
        """Searches with the text box (Enter, Search); returns the query's task, or None."""
        text = self.text.text().strip()
        if not text:
            self.show_error("Type some text to search with")
            return None
        self.last_query = {"text": text}
        return self._send("text", text, f"“{text}”")

    def query_file(self, path: str) -> None:
        """A dropped or opened file: audio by its suffix, otherwise an image."""
        file = Path(path)
        if not file.is_file():
            self.show_error(f"{path}: not a file")
            return
        if file.suffix.lower() in AUDIO_SUFFIXES:
            self.last_query = {"audio": str(file)}
            self.speech.show_file(file)
            self._send("audio", str(file), file.name)
        else:
            self.last_query = {"image": str(file)}
            self.drop_zone.show_image(QImage(str(file)))
            self._send("image", str(file), file.name)

    def query_qimage(self, image: QImage) -> None:
        if image.isNull():
            self.show_error("The clipboard / drop holds no readable image")
            return
        path = self.image_box.scratch("pasted")
        image.save(str(path))
        self.last_query = {"image": str(path)}
        self.drop_zone.show_image(image)
        self._send("image", str(path), "pasted image")

    def query_sketch(self, pixels) -> None:
        """The sketch pad's drawing (grey pixels), as it is drawn; the pad waits for each answer."""
        self.last_query = {"drawing": pixels}
        task = self._send("image", pixels, "drawing")
        if task is not None:
            self.sketch.pad.hold_until(task)

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            self.query_qimage(QImage(mime.imageData()))
        elif mime is not None and any(url.isLocalFile() for url in mime.urls()):
            self.query_file(next(url.toLocalFile() for url in mime.urls() if url.isLocalFile()))
        elif mime is not None and mime.hasText() and self.text.hasFocus():
            self.text.paste()
        else:
            self.show_error("Nothing to paste: copy an image first")

    def _open(self, filter: str, title: str) -> None:
        path = self.dialogs.open_file(self, title, filter)
        if path:
            self.query_file(path)

    def _recorded(self, wave, rate: int) -> None:
        self.last_query = {"audio": (wave, rate)}
        self._send("audio", (wave, rate), f"recording ({len(wave) / rate:.1f} s)")

    def _heard(self, utterance) -> None:
        adapt = self.adapt.isChecked()      # a tentative utterance may be replaced: only what ended adapts, once
        if not (utterance.to_ask or adapt):
            return                          # confirmed: its answer, asked when it was tentative, is on screen
        self.last_query = {"audio": (utterance.waveform, VAD_RATE)}
        self._send("audio", (utterance.waveform, VAD_RATE), f"heard ({len(utterance.waveform) / VAD_RATE:.1f} s)",
                   asked=utterance, adapt=adapt and utterance.kind != TENTATIVE)

    def play(self, path: str) -> None:
        error = audio_capture.play_file(path)
        if error:
            self.show_error(error)

    def show_error(self, message: str) -> None:
        self.results.show_error(message)
        self.message.emit(message)

    # ------------------------------------------------------------------ corrections
    def correct(self, answer, hit):
        """`hit` is the right answer of `answer`'s query: the model learns it now. Returns the task."""
        if self.session is None:
            return None
        shown = hit.shown_label() if hit.label is not None else (hit.caption or Path(hit.path or "").name)
        return self._learning(self.session.correct(answer.query_id, hit.modality, hit.identity), str(shown))

    def correct_label(self, answer, target: str, label: str):
        """None of `answer`'s rows is right: `label` (a label or caption of `target`'s gallery) is."""
        if self.session is None:
            return None
        return self._learning(self.session.correct_label(answer.query_id, target, label), label)

    def _learning(self, task, label: str):
        self.results.learning(label)
        task.result.connect(self.results.show_learnt)
        task.result.connect(lambda learnt: self.message.emit(f"Learnt “{label}” in {1e3 * learnt.seconds:.0f} ms"))
        task.error.connect(lambda message: (self.results.learnt_label.setText(""), self.show_error(message)))
        return task

    def forget_correction(self, index: int):
        if self.session is None:
            return None
        task = self.session.forget_correction(index)
        task.result.connect(lambda learnt: self.message.emit(f"Correction {index + 1} forgotten; "
                                                             f"{len(learnt.held)} held"))
        task.error.connect(self.show_error)
        return task

    # ------------------------------------------------------------------ memory & data set
    def reset_memory(self) -> None:
        if self.session is not None:
            self.session.reset_memory().error.connect(self.show_error)

    def _choose_learners(self, names: tuple) -> None:
        if self.session is not None:
            self.session.choose_learners(names).error.connect(self.show_error)

    def add_to_dataset(self, root: str, label: str) -> None:
        self.dataset.add(self.session, root, label, self.last_query or {}, self.text.text().strip() or None,
                         lambda: self.image_box.scratch("drawing"))

    # ------------------------------------------------------------------ teach
    def _teach(self, steps: int) -> None:
        folder = self.dataset.path.text().strip()
        if not folder:
            self.show_error("Choose the folder of your data set first (Add to my data set)")
            return
        if self.model_path is None or not self.model_ready:
            self.show_error("Load a model first: Teach fine-tunes the model in use")
            return
        self.teach_requested.emit({"folder": folder, "checkpoint": self.model_path, "steps": int(steps)})

    def teaching(self, run, folder: str) -> None:
        """A Teach run (a TrainingRun) started on `folder`: the Teach box follows it, then its outcome."""
        self.teach_run = run
        self.teach.follow(run, lambda checkpoint: self.session.adopt_taught(checkpoint, folder))
        run.finished.connect(lambda: self.teach_run is run and setattr(self, "teach_run", None))

    def _adopted(self, outcome) -> None:
        self.model_path = outcome.model.path
        self.status.model_loaded(outcome.model)
        self._gallery_ready(outcome.gallery)
        self.model_taught.emit(outcome.model.path)

    def discard_temp_files(self) -> None:
        self.image_box.discard_scratch()

    def close_audio(self) -> None:
        self.speech.close_audio()
