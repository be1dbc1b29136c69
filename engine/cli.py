"""`nlmm`: the engine without the studio.

Every user error (bad config, bad file) is one line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from engine.cli_args import UserError, at_least, some_of
from engine.config import MODALITIES, load_config, validate
from engine.data.errors import DataError
from engine.errors import USER_ERRORS

from engine.paths import DEFAULT_CHECKPOINT  # noqa: E402  (re-exported: `engine.cli.DEFAULT_CHECKPOINT`)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class ProgressPrinter:
    """One progress line that updates in place on a terminal (a line every 10 % elsewhere)."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.tty = stream, stream.isatty()
        self.open_line = False
        self._tenths = -1     # the last tenth `fraction` printed (off a terminal)

    def fraction(self, label: str, done: float, total: float) -> None:
        """Long work's progress ("embedding the gallery … 40 %"). Work done at the first call (read from
        a cache) prints nothing."""
        if total <= 0 or (self._tenths < 0 and not self.open_line and done >= total):
            return
        share = min(1.0, done / total)
        if self.tty:
            self.stream.write(f"\r\033[K{label} {100 * share:.0f} %")
            self.stream.flush()
            self.open_line = share < 1.0
            if share >= 1.0:
                self.stream.write("\n")
        elif int(10 * share) > self._tenths:
            self._tenths = int(10 * share)
            self.line(f"{label} {100 * share:.0f} %")
        if share >= 1.0:
            self._tenths = -1

    def line(self, text: str) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False
        print(text, file=self.stream, flush=True)

    def __call__(self, event) -> None:
        kind = event.kind
        if kind == "step":
            text = (f"step {event.step}/{event.total_steps}  loss {event.loss:.4f}  "
                    f"{event.samples_per_s:.0f} samples/s  ETA {_fmt_seconds(event.eta_s)}")
            if self.tty:
                self.stream.write("\r\033[K" + text)
                self.stream.flush()
                self.open_line = True
            elif event.step % max(1, event.total_steps // 10) == 0 or event.step == 1:
                self.line(text)
        elif kind == "eval":
            from engine.training.evaluate import format_recall_table
            self.line(f"evaluation at step {event.step} ({event.split}):\n{format_recall_table(event.recall)}")
        elif kind == "checkpoint":
            if self.tty:
                return
            self.line(f"checkpoint: {event.path} (step {event.step})")
        elif kind in ("warning", "failed", "stopped", "finished"):
            self.line(f"{kind}: {event.message}")


def share(text: str) -> float:
    """An argparse type: a fraction in [0, 1) (`--mix-builtin`)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got '{text}'") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def _train_config(args: argparse.Namespace):
    """The config a run trains with. A fine-tune (--init) takes the checkpoint's unless --config is given,
    with a warm-up that fits a short run, and half of each batch from the built-in set by default."""
    cfg = _config_before_overrides(args)
    if args.learn_only is not None:
        cfg.train.learn_only = args.learn_only
    return cfg


def _config_before_overrides(args: argparse.Namespace):
    if args.init is None:
        if args.mix_builtin is not None:
            raise UserError("--mix-builtin mixes built-in items into a fine-tune: it needs --init CHECKPOINT")
        if args.resume and args.config:   # said, not silently ignored (scripts pass the same config again)
            _stderr(f"nlmm: --resume continues the run with the config it was started with; --config "
                    f"{args.config} is not used")
        return load_config(args.config or "tiny")
    if args.resume:
        raise UserError("--init starts a new run from a trained model and --resume continues a run: give one")
    from engine.training.init import fine_tune_config
    cfg = load_config(args.config) if args.config else fine_tune_config(args.init, args.steps)
    if args.mix_builtin is not None:
        cfg.data.mix_builtin = args.mix_builtin
    elif args.data.startswith("builtin"):
        cfg.data.mix_builtin = 0.0      # the built-in set is the data: nothing to mix in
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from engine.training.distributed import init_distributed, shutdown_distributed
    from engine.training.trainer import Trainer
    dist_info = init_distributed()
    try:
        cfg = _train_config(args)
        if args.batch_size is not None:
            cfg.data.batch_size = args.batch_size
        if args.lr is not None:
            cfg.train.lr = args.lr
        validate(cfg)
        if args.resume and not args.out:
            raise UserError("--resume needs --out DIR (the run folder holding checkpoint.pt)")
        allow_missing = set(args.allow_missing or ())
        trainer = Trainer(cfg, args.data, args.out, args.device, args.steps, args.resume, dist_info,
                          allow_missing=allow_missing, init=args.init, tensorboard=args.tensorboard)
        printer = ProgressPrinter()
        if dist_info.is_main:
            trainer.subscribe(printer)
            for modality in sorted(allow_missing & set(trainer.data.missing)):
                printer.line(f"warning: training without {modality}: {trainer.data.missing_message(modality)}")
            printer.line(f"training {trainer.cfg.name} ({trainer.model.num_parameters() / 1e6:.1f} M parameters) on "
                         f"{trainer.data.source}, {trainer.device}, into {trainer.out_dir}"
                         + (f", resuming at step {trainer.step}" if args.resume else "")
                         + (f", fine-tuning {trainer.init}" if trainer.init else "")
                         + (f" with {100 * trainer.cfg.data.mix_builtin:.0f} % built-in items"
                            if trainer.init and trainer.data.source != "builtin" else ""))
            if trainer.frozen_parameters:
                learning = trainer.cfg.train.learn_only
                kept = " and ".join(m for m in MODALITIES if m not in learning)
                printer.line(f"learning only the parts that read {' and '.join(learning)}: the {kept} encoders "
                             f"and the shared memory stay as they were ({trainer.frozen_parameters / 1e6:.1f} M "
                             "parameters frozen)")
            if trainer.tensorboard:
                from engine.training.tensorboard_log import FOLDER
                printer.line(f"TensorBoard events in {trainer.out_dir / FOLDER}: "
                             f"tensorboard --logdir {trainer.out_dir.parent}")
            if trainer.new_words:
                shown = ", ".join(trainer.new_words[:8]) + (", …" if len(trainer.new_words) > 8 else "")
                printer.line(f"{len(trainer.new_words)} new word(s) join the vocabulary: {shown}")
        # `kill` (SIGTERM) stops like the studio's Stop button: the loop ends after this step and saves.
        signal.signal(signal.SIGTERM, lambda *_: trainer.stop())
        try:
            final = trainer.run()
        except KeyboardInterrupt:
            trainer.stop()
            try:
                path = trainer.save()
            except FloatingPointError as err:
                printer.line(f"interrupted at step {trainer.step}; checkpoint not written: {err}")
                return 130
            printer.line(f"interrupted at step {trainer.step}; checkpoint kept: {path}")
            return 130
        if final.kind == "finished" and dist_info.is_main and trainer.eval_items:
            return _final_evaluation(trainer, final, printer)
        return 1 if final.kind == "failed" else 0
    finally:
        shutdown_distributed()


SHORT_RUN_EVAL_ITEMS = 200   # held-out items a run shorter than its evaluation interval is measured on


class _EvaluationStopped(Exception):
    """SIGTERM during the evaluation that ends a training run."""


def _final_evaluation(trainer, final, printer) -> int:
    """The recall table of a finished run: the evaluation made at its last step when there was one,
    otherwise a new one, which `kill` or Ctrl-C skip at once (the checkpoint is already saved)."""
    from engine.training.evaluate import format_recall_table
    if trainer.last_recall and trainer.last_recall_step == final.step:
        printer.line(format_recall_table(trainer.last_recall))
        return 0

    def stop(*_):
        raise _EvaluationStopped

    items = trainer.eval_items
    short = final.step < trainer.cfg.train.eval_every and len(items) > SHORT_RUN_EVAL_ITEMS
    if short:   # a smoke run's table need not cost minutes: an even spread of the held-out items
        from engine.retrieval import gallery_items
        items = gallery_items(trainer.data, trainer.eval_split, SHORT_RUN_EVAL_ITEMS)
    before = signal.signal(signal.SIGTERM, stop)   # before the line that tells the user they may
    try:   # a kill may arrive while that line is still being printed
        printer.line(f"evaluating on {len(items)} held-out items"
                     + (f" of {len(trainer.eval_items)} (a short run; `nlmm eval` measures them all)" if short else "")
                     + " (kill or Ctrl-C skips it; the checkpoint is saved)")
        printer.line(format_recall_table(trainer.evaluate(items)))
    except (_EvaluationStopped, KeyboardInterrupt) as err:
        printer.line(f"final evaluation skipped; checkpoint kept: {final.checkpoint}")
        return 130 if isinstance(err, KeyboardInterrupt) else 0
    finally:
        signal.signal(signal.SIGTERM, before)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.data.sources import load_source
    from engine.training.checkpoint import load_model
    from engine.training.evaluate import evaluate, format_recall_table
    from engine.device import pick_device
    device = pick_device(args.device)
    model, cfg, tokenizer, _ = load_model(args.checkpoint, device)
    data = load_source(args.data)
    items = data.splits.get(args.split, [])
    if not items:
        raise UserError(f"{data.source}: the {args.split} split is empty")
    recall = evaluate(model, items, cfg, tokenizer, device)
    if args.json:
        print(json.dumps({"split": args.split, "recall": recall}))
    else:
        print(f"{args.checkpoint} on {data.source}, {args.split} split ({len(items)} items):")
        print(format_recall_table(recall))
    return 0


def _gallery_items(spec: str):
    """-> (the gallery's items, the user's names of their labels)."""
    from engine.data.sources import builtin_splits, load_source
    from engine.vocabulary import SPLITS
    if spec.startswith("builtin"):
        split = spec.partition("-")[2] or "test"
        return (builtin_splits((split,))[split] if split in SPLITS else []), {}
    data = load_source(spec if ":" in spec else f"folder:{spec}")
    return [item for split in data.splits.values() for item in split], dict(data.label_names)


def _read_table(path: str) -> list[list[str]]:
    """A small CSV as rows, in any encoding and separator Excel writes (engine/data/table.py)."""
    import csv
    from engine.data.table import read_text
    try:
        text, dialect, _ = read_text(Path(path).read_bytes())
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not text (neither UTF-8, UTF-16 nor Windows-1252)") from None
    return [row for row in csv.reader(text, dialect) if any(cell.strip() for cell in row)]


def _read_corrections_csv(path: str, queries: list[tuple[str, str]]) -> dict[int, str]:
    """`--correct LABELS.csv` (rows `file,label`) -> {index of the query it labels: label}. A file is
    matched as written, else by its resolved path, else by its name when only one query has that name."""
    rows = _read_table(path)
    if not rows:
        raise UserError(f"{path}: no rows (expected 'file,label' rows)")
    header = [cell.strip().casefold() for cell in rows[0]]
    if header[:2] == ["file", "label"]:
        rows = rows[1:]
    given = {value: n for n, (modality, value) in enumerate(queries) if modality != "text"}
    resolved = {str(Path(value).resolve()): n for value, n in given.items()}
    names: dict[str, list[int]] = {}
    for value, n in given.items():
        names.setdefault(Path(value).name, []).append(n)
    labels: dict[int, str] = {}
    for line, row in enumerate(rows, start=2 if header[:2] == ["file", "label"] else 1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise UserError(f"{path}: line {line}: expected 'file,label', got {','.join(row)!r}")
        file, label = row[0].strip(), row[1].strip()
        n = given.get(file, resolved.get(str(Path(file).resolve())))
        if n is None and len(names.get(Path(file).name, [])) == 1:
            n = names[Path(file).name][0]
        if n is None:
            _stderr(f"nlmm: {path}: line {line}: {file} is not one of the queries; its label is not used")
            continue
        labels[n] = label
    return labels


def _unreadable_queries(queries: list[tuple[str, str]]) -> set[int]:
    """The positions of image and audio queries whose files cannot be read, each reported on stderr."""
    from engine.config import AudioConfig
    from engine.data.audio import load_audio
    from engine.data.image import open_image
    from engine.retrieval import QUERY_READ_FACTOR
    from engine.vocabulary import SAMPLE_RATE
    bad = set()
    for n, (modality, value) in enumerate(queries):
        try:
            if modality == "image":
                open_image(value)
            elif modality == "audio":
                load_audio(value, SAMPLE_RATE, QUERY_READ_FACTOR * AudioConfig().max_seconds)
        except DataError as err:
            _stderr(f"nlmm: {err}")
            bad.add(n)
    return bad


def cmd_query(args: argparse.Namespace) -> int:
    from engine.corrections import CorrectionsFileError
    from engine.gallery_cache import GalleryCache
    from engine.retrieval import Retriever
    from engine.vocabulary import ANSWER_GALLERY
    queries = args.queries or []  # in the order given on the command line
    if not queries:
        raise UserError("give at least one query: --image FILE, --audio FILE or --text TEXT")
    labels = _read_corrections_csv(args.correct, queries) if args.correct else {}
    unreadable = _unreadable_queries(queries)   # before anything heavy loads
    if len(unreadable) == len(queries):
        return 1
    retriever = Retriever.from_checkpoint(args.checkpoint or DEFAULT_CHECKPOINT, args.device)
    items, label_names = _gallery_items(args.gallery)
    if not items:
        raise UserError(f"gallery '{args.gallery}' has no items")
    printer = ProgressPrinter()
    retriever.build_gallery(items, label_names=label_names, cache=None if args.no_cache else GalleryCache(),
                            progress=lambda done, total: printer.fraction(
                                f"nlmm: embedding the gallery ({len(items):,} items; kept for the next query)",
                                done, total))
    if args.memory:
        try:
            held = retriever.load_corrections(args.memory)
        except (CorrectionsFileError, ValueError) as err:
            raise UserError(f"--memory {err}") from None
        _stderr(f"nlmm: {len(held.held)} corrections from {args.memory}")
    failures = len(unreadable)
    for n, (modality, value) in enumerate(queries):
        if n in unreadable:
            continue
        try:
            result = retriever.query(modality, value, k=args.k, adapt=args.adapt)
        except DataError as err:
            failures += 1
            _stderr(f"nlmm: {err}")
            continue
        learnt, problem = None, None
        if n in labels:
            target = ANSWER_GALLERY[modality]
            try:
                learnt = retriever.correct(result.query_id, target, retriever.identity_of(target, labels[n]))
            except ValueError as err:
                problem = str(err)
                _stderr(f"nlmm: {value}: not corrected: {err}")
        if args.json:
            line = result.as_dict()
            if args.correct:
                line["corrected"] = learnt is not None
                if learnt is not None:
                    line["label"], line["learn_ms"] = labels[n], round(1e3 * learnt.seconds, 2)
                elif problem:
                    line["not_corrected"] = problem
            print(json.dumps(line), flush=True)
        else:
            print(f"{modality} query {value!r}  ({result.latency_ms:.1f} ms)")
            for target, hits in result.results.items():
                shown = ", ".join(f"{h.shown_label() if h.label is not None else (h.caption or h.path)} ({h.score:.2f})"
                                  for h in hits)
                print(f"  {target:>5}: {shown}")
            if learnt is not None:
                print(f"  corrected: {labels[n]} (learnt in {1e3 * learnt.seconds:.0f} ms)", flush=True)
    if args.memory_out:
        due = retriever.corrections.consolidation_due()
        if due:   # what the studio does while the user looks at an answer, done before the file is written
            started = time.perf_counter()
            retriever.consolidate(due)
            _stderr(f"nlmm: {due} consolidation steps in {time.perf_counter() - started:.1f} s")
        try:
            retriever.save_corrections(args.memory_out)
        except CorrectionsFileError as err:
            raise UserError(str(err)) from None
        _stderr(f"nlmm: {len(retriever.corrections.corrections)} corrections written to {args.memory_out}")
    return 1 if failures == len(queries) else 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import export_encoders
    from engine.training.checkpoint import load_model
    model, cfg, _, _ = load_model(args.checkpoint, "cpu")
    report = export_encoders(model, cfg, args.format, args.out)
    for modality, info in report.items():
        print(f"{modality:>5}: {info['path']}  (max difference from the model {info['max_abs_diff']:.1e})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import bench_module
    progress = _stderr if args.json else print
    bench = bench_module(args.what)
    result = bench.from_args(args, progress)
    print(json.dumps(result.as_dict()) if args.json else bench.format_table(result))
    return 0


QUICK_SET = ("kernels", "query", "ttt", "robustness", "teach", "corrections", "scale", "startup")   # train has no quick form


def cmd_bench_all(args: argparse.Namespace) -> int:
    """Each benchmark of the quick set in turn, with its own defaults and --quick."""
    from engine.bench import bench_module
    progress = _stderr if args.json else print
    results, parser = [], build_parser(with_benches=True)
    for name in args.only or QUICK_SET:
        progress(f"== nlmm bench {name} --quick")
        own = parser.parse_args(["bench", name, "--quick"] + (["--device", args.device] if args.device else []))
        bench = bench_module(name)
        result = bench.from_args(own, progress)
        results.append(result)
        if not args.json:
            print(bench.format_table(result))
    if args.json:
        print(json.dumps({"bench": "all", "quick": True, "targets_met": all(r.targets_met for r in results),
                          "benches": [r.as_dict() for r in results]}))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from engine.data.sources import load_source
    start = time.perf_counter()
    data = load_source(args.data)
    info = data.summary()
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{data.source}  (indexed in {time.perf_counter() - start:.2f} s)")
    print(f"{'split':<7}{'items':>8}{'images':>8}{'texts':>8}{'audios':>8}")
    for split in ("train", "val", "test"):
        row = info[split]
        print(f"{split:<7}{row['items']:>8}{row['images']:>8}{row['texts']:>8}{row['audios']:>8}")
    for modality in data.missing:
        print(f"MISSING: {data.missing_message(modality)}")
    for reason, count in sorted(info["skipped"].items()):
        print(f"skipped: {count} x {reason}")
    for note in data.notes:
        print(f"note: {note}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.training.runs import list_runs
    if args.run:
        return _show_run(Path(args.run), args)
    runs = list_runs(args.dir)
    if not runs and not args.json:
        print(f"no runs under {args.dir}")
    for run in runs:
        print(json.dumps(run.as_dict()) if args.json else f"{run.name:<40} {run.describe()}")
    return 0


def _show_run(folder: Path, args: argparse.Namespace) -> int:
    from engine.events import record
    from engine.training.runs import read_run
    history = read_run(folder)
    if not history.steps:
        raise UserError(f"{folder}: no steps logged (no readable metrics.jsonl there)")
    if args.steps:
        for step in history.steps:
            print(json.dumps(record(step)) if args.json else f"{step.step}\t{step.loss:.4f}")
        return 0
    last = history.steps[-1]
    recall = history.evaluations[-1].recall if history.evaluations else {}
    if args.json:
        print(json.dumps({"run": str(folder), "step": last.step, "total_steps": last.total_steps, "loss": last.loss,
                          "levels": list(history.levels), "evaluations": len(history.evaluations), "recall": recall}))
        return 0
    from engine.training.evaluate import format_recall_table
    print(f"{folder}: step {last.step}/{last.total_steps}, loss {last.loss:.4f}, levels {', '.join(history.levels)}")
    if recall:
        print(f"last evaluation (step {history.evaluations[-1].step}):\n{format_recall_table(recall)}")
    return 0


class _OrderedQueries(argparse.Action):
    """Collects (modality, value) pairs across --image/--audio/--text in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        queries = getattr(namespace, self.dest) or []
        queries.extend((option_string.lstrip("-"), value) for value in values)
        setattr(namespace, self.dest, queries)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake told in one line (the usage itself is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(with_benches: bool = True) -> argparse.ArgumentParser:
    """`with_benches`: give `nlmm bench` its benchmarks' own arguments (importing their modules takes
    0.4 s, which no other command should pay)."""
    parser = Parser(prog="nlmm", description="Nested-Learning multimodal engine")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_bench(sub, with_benches)
    _add_train(sub)
    _add_eval(sub)
    _add_query(sub)
    _add_tools(sub)
    return parser


def _add_bench(sub, with_benches: bool) -> None:
    from engine.bench import BENCHES, bench_module
    bench = sub.add_parser("bench", help="measure speed and quality on this machine")
    bench.set_defaults(func=cmd_bench)
    if with_benches:
        benches = bench.add_subparsers(dest="what", required=True, metavar="NAME", title="benchmarks")
        for name, help_ in BENCHES.items():
            one = benches.add_parser(name, help=help_, description=help_)
            one.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
            one.add_argument("--json", action="store_true",
                             help="one JSON object: the figures, targets {limit, value, at_most, met} and what ran")
            one.add_argument("--quick", action="store_true",
                             help="small sizes: checks that it runs (the figures mean nothing)")
            bench_module(name).add_arguments(one)
            one.set_defaults(func=cmd_bench)
        every = benches.add_parser("all", help="the quick set: every benchmark with a quick form, small sizes",
                                   description="Every benchmark with a quick form (all but train), at its quick "
                                               "sizes: a check that each runs, in the one JSON shape.")
        every.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        every.add_argument("--json", action="store_true", help="one JSON object: each benchmark's result")
        every.add_argument("--only", type=some_of(QUICK_SET), default=None, metavar="A,B",
                           help=f"these of them (default: {', '.join(QUICK_SET)})")
        every.set_defaults(func=cmd_bench_all)


def _add_train(sub) -> None:
    train = sub.add_parser("train", help="train a model (torchrun --nproc_per_node=N for several processes)")
    train.add_argument("--config", default=None,
                       help="config file or preset name (default: tiny; with --init: the checkpoint's)")
    train.add_argument("--data", default="builtin", help="builtin | flickr8k:DIR | folder:DIR")
    train.add_argument("--init", default=None, metavar="CHECKPOINT",
                       help="fine-tune a trained model: its weights, tokenizer and domain statistics, a fresh optimiser")
    train.add_argument("--mix-builtin", type=share, default=None, metavar="SHARE",
                       help="with --init: the share of each batch drawn from the built-in set "
                            "(default 0.5, or the --config's data.mix_builtin)")
    train.add_argument("--learn-only", type=some_of(MODALITIES, in_their_order=True), default=None, metavar="M[,M]",
                       help="only the encoders and heads of these modalities learn; the others and the shared "
                            "memory stay frozen (train.learn_only; default: everything, or in a fine-tune "
                            "what the data's items bring)")
    train.add_argument("--lr", type=float, default=None, help="override train.lr")
    train.add_argument("--steps", type=at_least(1), default=None, help="total steps (default: the config's train.steps)")
    train.add_argument("--batch-size", type=at_least(2), default=None, help="override data.batch_size")
    train.add_argument("--out", default=None, help="run folder (default: runs/<time>-<config>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--tensorboard", action="store_true",
                       help="also write TensorBoard events (loss, rates, recall) into the run folder's tensorboard/")
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    train.add_argument("--allow-missing", nargs="+", choices=MODALITIES, metavar="MODALITY",
                       help="train even though the data set lacks every file of this modality (image, text, audio)")
    train.set_defaults(func=cmd_train)


def _add_eval(sub) -> None:
    evaluate = sub.add_parser("eval", help="recall@1/5/10 in all six directions")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--data", default="builtin")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument("--device", default=None)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=cmd_eval)


def _add_query(sub) -> None:
    query = sub.add_parser("query", help="nearest items of the other modalities for each query")
    query.add_argument("--checkpoint", default=None, help="default: the shipped demo model")
    for modality, metavar in (("image", "FILE"), ("audio", "FILE"), ("text", "TEXT")):
        query.add_argument(f"--{modality}", nargs="+", metavar=metavar, dest="queries", action=_OrderedQueries,
                           help=f"{modality} quer{'ies' if modality == 'text' else 'y files'}")
    query.add_argument("--gallery", default="builtin-test", help="builtin-test (default), builtin-val, or a folder")
    query.add_argument("--k", type=at_least(1), default=5, help="results per modality (default 5)")
    query.add_argument("--adapt", action="store_true", help="test-time training: the memory adapts as queries stream")
    query.add_argument("--device", default=None)
    query.add_argument("--json", action="store_true", help="one JSON object per query per line")
    query.add_argument("--correct", default=None, metavar="LABELS.csv",
                       help="rows 'file,label': after each of these files is answered, its label is learnt as "
                            "a correction (the next queries benefit)")
    query.add_argument("--memory", default=None, metavar="FILE",
                       help="start from the corrections saved in FILE (by --memory-out or the studio)")
    query.add_argument("--memory-out", default=None, metavar="FILE",
                       help="write the corrections held at the end to FILE (atomically), after the replay steps "
                            "that consolidate them (the studio takes these while idle)")
    query.add_argument("--no-cache", action="store_true",
                       help="embed the gallery afresh and keep nothing (default: embedded galleries are kept in "
                            "$NLMM_CACHE_DIR or ~/.cache/nlmm/galleries, keyed by model and files)")
    query.set_defaults(func=cmd_query)


def _add_tools(sub) -> None:
    """export, runs and data."""
    export = sub.add_parser("export", help="export the encoders")
    export.add_argument("--checkpoint", required=True)
    export.add_argument("--format", choices=["torchscript", "onnx"], default="torchscript")
    export.add_argument("--out", required=True, help="folder for text/image/audio encoder files")
    export.set_defaults(func=cmd_export)

    runs = sub.add_parser("runs", help="list training runs, or show one run's log")
    runs.add_argument("run", nargs="?", default=None, help="a run folder: its last step, levels and recall")
    runs.add_argument("--dir", default="runs", help="the folder of runs to list (default ./runs)")
    runs.add_argument("--steps", action="store_true", help="with a run: print every step's loss")
    runs.add_argument("--json", action="store_true", help="one JSON object a line")
    runs.set_defaults(func=cmd_runs)

    data = sub.add_parser("data", help="inspect a data source")
    data.add_argument("what", choices=["info"], help="info: items per split and what was skipped")
    data.add_argument("--data", default="builtin", help="builtin | flickr8k:DIR | folder:DIR (default: builtin)")
    data.add_argument("--json", action="store_true", help="print one JSON object")
    data.set_defaults(func=cmd_data)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):   # a terminal that cannot show a query's emoji shows \U0001f600
        if hasattr(stream, "reconfigure") and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")
    given = sys.argv[1:] if argv is None else argv
    args = build_parser(with_benches="bench" in given).parse_args(argv)
    try:
        return args.func(args)
    except (*USER_ERRORS, UserError) as err:
        _stderr(f"nlmm: {err}")
        return 2
    except KeyboardInterrupt:
        _stderr("nlmm: interrupted")
        return 130
    except BrokenPipeError:  # `nlmm … | head`: the reader left; nothing is wrong
        return 0
    except OSError as err:  # disk full, `ulimit -f`, read-only or missing folders: the OS said why
        where = f"{err.filename}: " if err.filename else ""
        _stderr(f"nlmm: {where}{err.strerror or err}")
        return 2


# Commands after which the process ends at once: tearing the interpreter down (torch's modules and its
# static objects) took 0.5 s of every call (docs/cli.md). Training and benchmarks end the usual way.
USUAL_EXIT = ("train", "bench")


def run() -> None:
    """The `nlmm` command: `main()`, then out without the interpreter's teardown (atexit handlers run and
    the streams are flushed first), except after the commands in USUAL_EXIT and under a profiler or a
    coverage tracer, which write their results at teardown."""
    try:
        code = main()
    except SystemExit as done:   # argparse: --help, a usage mistake
        code = done.code
    command = next((word for word in sys.argv[1:] if not word.startswith("-")), None)
    if command in USUAL_EXIT or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    if code is not None and not isinstance(code, int):   # as sys.exit treats it: a message, then 1
        _stderr(str(code))
        code = 1
    import atexit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a reader that left (`| head`), a closed stream: nothing to keep
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    run()
