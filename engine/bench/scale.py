"""`nlmm bench scale`: a gallery the size of Flickr8k's (8 000 images, 40 000 captions, 40 000 spoken
captions), made on the fly from the built-in material (links to its images and clips, captions made
distinct), never committed.

Measured: `nlmm query` on it as a user runs it, a fresh process each time: the first query ever (every item
embedded, then kept in the gallery cache), the next one (read from the cache) and `nlmm --help` beside
them; then, in one process, queries of each modality against the whole gallery (p50 / p99: exact search
over every row) and the memory the gallery holds; then the cached query and the queries again beside one
busy process (reported; the targets are the quiet figures).
"""
from __future__ import annotations

import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from engine.bench.machine import describe, rss_mb
from engine.bench.query import busy_processes
from engine.bench.result import BenchResult, Target
from engine.bench.startup import timed_nlmm
from engine.data.builtin import load_builtin_manifest

NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)
IMAGES, PER_IMAGE = 8000, 5          # Flickr8k: 8 000 images, 5 captions each (and 5 spoken captions)
QUERIES = 30                         # each modality's timed queries in one process
WARM_P50_MS = 50.0                   # a query against the whole gallery, p50
FIRST_QUERY_CACHED_S = 10.0          # a fresh `nlmm query` once the gallery is cached
EXTRA_WORDS = ("please", "again", "now", "here", "slowly")   # one a caption of an image


def add_arguments(parser) -> None:
    from engine.cli_args import at_least, checkpoint_option
    checkpoint_option(parser)
    parser.add_argument("--images", type=at_least(10), default=IMAGES,
                        help=f"images in the gallery, each with {PER_IMAGE} captions and clips (default {IMAGES})")


def make_gallery(folder: Path, images: int, progress=print) -> Path:
    """A folder data set of `images` images, each with PER_IMAGE distinct captions and clips: links to the
    built-in files (a distinct path each), captions with a word or a count added. Returns the folder."""
    splits = load_builtin_manifest()
    manifest = [item for split in ("train", "val", "test") for item in splits[split]]
    (folder / "images").mkdir(parents=True)
    (folder / "audio").mkdir()
    clips: dict[int, list[Path]] = {}
    for item in manifest:
        clips.setdefault(item.label, []).append(item.audio)
    rows = []
    for n in range(images):
        item = manifest[n % len(manifest)]
        image = folder / "images" / f"{n:05d}{item.image.suffix}"
        os.symlink(item.image, image)
        for k in range(PER_IMAGE):
            spoken = clips[item.label][(n * PER_IMAGE + k) % len(clips[item.label])]   # the number, other voices
            clip = folder / "audio" / f"{n:05d}-{k}{spoken.suffix}"
            os.symlink(spoken, clip)
            caption = f"{item.text} {EXTRA_WORDS[k % len(EXTRA_WORDS)]} {n}"   # 40 000 distinct captions
            rows.append([image.relative_to(folder), caption, clip.relative_to(folder), item.label])
    with open(folder / "items.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "text", "audio", "label"])
        writer.writerows(rows)
    progress(f"gallery: {images} images, {len(rows)} captions and {len(rows)} clips in {folder}")
    return folder


def run(checkpoint, device: str | None = None, progress=print, quick: bool = False,
        images: int = IMAGES) -> BenchResult:
    """`quick`: 40 images (a check that it runs, not a figure)."""
    from engine.cli import _gallery_items
    from engine.gallery_cache import FOLDER as GALLERIES, GalleryCache
    from engine.retrieval import Retriever
    if quick:
        images = min(images, 40)
    with tempfile.TemporaryDirectory(prefix="nlmm-bench-scale-") as tmp:
        folder = make_gallery(Path(tmp) / "gallery", images, progress)
        env = {**os.environ, "NLMM_CACHE_DIR": str(Path(tmp) / "cache")}
        query = ["query", "--checkpoint", str(checkpoint), "--gallery", f"folder:{folder}", "--text", "forty two",
                 "--k", "5", "--json"] + (["--device", device] if device else [])
        progress("the first query ever: every item embedded, then cached")
        cold, first = timed_nlmm(query, env)
        if first.returncode != 0:
            raise RuntimeError(f"nlmm query failed: {first.stderr.strip().splitlines()[-1:]}")
        progress(f"  {cold:.1f} s; the next query, from the cache")
        warm, _ = timed_nlmm(query, env)
        help_s, _ = timed_nlmm(["--help"], env)
        progress(f"  {warm:.1f} s (nlmm --help: {help_s:.1f} s); queries against the whole gallery, in one process")

        torch.manual_seed(0)
        retriever = Retriever.from_checkpoint(checkpoint, device)
        items, names = _gallery_items(f"folder:{folder}")
        started = time.perf_counter()
        cache = GalleryCache(Path(env["NLMM_CACHE_DIR"]) / GALLERIES)     # the one the command line wrote
        from_cache = retriever.build_gallery(items, label_names=names, cache=cache)
        load_s = time.perf_counter() - started
        sizes = retriever.gallery_sizes()
        embedded_mb = sum(g.embeddings.numel() * g.embeddings.element_size() for g in retriever.galleries.values()) / 2**20
        builtin = load_builtin_manifest()["test"]
        values = {"text": [i.text for i in builtin], "image": [i.image for i in builtin],
                  "audio": [i.audio for i in builtin]}
        latency = _latency(retriever, values, 3 if quick else QUERIES, progress)
        progress("beside a busy process: the next query in a fresh process, then queries in this one")
        with busy_processes(1):
            warm_busy, _ = timed_nlmm(query, env)
            latency_busy = _latency(retriever, values, 3 if quick else QUERIES, progress)
    figures = {"images": images, "gallery_rows": sizes, "first_query_s": round(cold, 2),
               "first_query_cached_s": round(warm, 2), "help_s": round(help_s, 2),
               "gallery_from_cache_s": round(load_s, 2), "read_from_cache": from_cache, "query": latency,
               "beside_busy": {"first_query_cached_s": round(warm_busy, 2), "query": latency_busy, "busy_processes": 1},
               "gallery_embeddings_mb": round(embedded_mb, 1), "process_rss_mb": round(rss_mb(), 1),
               "search": "exact (every row scored)"}
    targets = {f"{m}: query p50 over the whole gallery (ms)": Target(WARM_P50_MS, latency[m]["p50_ms"], at_most=True)
               for m in latency}
    targets["first query of a fresh process, gallery cached (s)"] = Target(FIRST_QUERY_CACHED_S, warm, at_most=True)
    ran = describe(retriever.device, retriever.cfg.precision)
    return BenchResult(NAME, figures, targets, ran, quick)


def _latency(retriever, values: dict[str, list], count: int, progress) -> dict[str, dict]:
    """Each modality's queries against the whole gallery: p50 / p99 in ms (the first apart: it also warms
    that modality's code paths)."""
    latency = {}
    for modality, pool in values.items():
        times = []
        for value in pool[:count]:
            start = time.perf_counter()
            retriever.query(modality, value, k=5)
            times.append(1e3 * (time.perf_counter() - start))
        ordered = sorted(times[1:])
        latency[modality] = {"first_ms": round(times[0], 1), "p50_ms": round(statistics.median(ordered), 1),
                             "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
                             "n": len(ordered)}
        progress(f"  {modality:>5}: p50 {latency[modality]['p50_ms']} ms, p99 {latency[modality]['p99_ms']} ms")
    return latency


def from_args(args, progress) -> BenchResult:
    return run(args.checkpoint, args.device, progress=progress, quick=args.quick,
               images=args.images)


def format_table(result: BenchResult) -> str:
    from engine.bench.machine import machine_line
    rows = result["gallery_rows"]
    lines = [f"Machine: {machine_line(result.ran)}",
             f"gallery: {rows.get('image', 0):,} images, {rows.get('text', 0):,} captions, {rows.get('audio', 0):,} "
             f"clips ({result['search']}; embeddings {result['gallery_embeddings_mb']:.0f} MB, the process "
             f"{result['process_rss_mb']:.0f} MB)",
             f"nlmm query, a fresh process: first ever {result['first_query_s']:.1f} s (every item embedded), "
             f"next {result['first_query_cached_s']:.1f} s (cached; nlmm --help {result['help_s']:.1f} s)"]
    for modality, figures in result["query"].items():
        lines.append(f"  {modality:>5} query over the whole gallery: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms "
                     f"(the first {figures['first_ms']} ms)")
    busy = result["beside_busy"]
    lines.append(f"beside {busy['busy_processes']} busy process: next query in a fresh process "
                 f"{busy['first_query_cached_s']:.1f} s; " + ", ".join(
                     f"{m} p50 {f['p50_ms']} / p99 {f['p99_ms']} ms" for m, f in busy["query"].items()))
    lines.append("targets (quiet):\n" + result.targets_table())
    return "\n".join(lines)
