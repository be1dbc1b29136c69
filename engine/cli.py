"""`nlmm`: the engine without the studio.

Every user error (bad config, bad file) is one line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.config import ConfigError, load_config
from engine.data.errors import DataError


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "kernels":
        from engine.bench import kernels
        cfg = load_config(args.config)
        progress = _stderr if args.json else print
        result = kernels.run(cfg, args.device, progress=progress, quick=args.quick)
        if args.json:
            print(json.dumps(result))
        else:
            _print_kernels_table(result)
        return 0
    raise UserError(f"unknown benchmark '{args.what}'")


def cmd_data(args: argparse.Namespace) -> int:
    import time

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
    for reason, count in sorted(info["skipped"].items()):
        print(f"skipped: {count} x {reason}")
    for note in data.notes:
        print(f"note: {note}")
    return 0


def _print_kernels_table(result: dict) -> None:
    print(f"\nDelta rule, forward+backward, B=8, 4 heads, d_head=32 ({result['device']}):")
    print(f"{'T':>6} {'recurrent ms':>14} {'chunked ms':>12} {'speed-up':>9}")
    for row in result["delta_rule"]:
        print(f"{row['T']:>6} {row['recurrent_ms']:>14.1f} {row['chunked_ms']:>12.1f} {row['speedup']:>8.1f}x")
    t = result["train_step"]
    print(f"\nTraining step: {t['samples_per_s']:.0f} samples/s, {t['gflops']:.1f} GFLOP/s "
          f"of a {t['peak_gflops']:.0f} GFLOP/s torch.mm peak ({100 * t['fraction_of_peak']:.0f}%)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlmm", description="Nested-Learning multimodal engine")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="measure speed on this machine")
    bench.add_argument("what", choices=["kernels"], help="kernels: delta-rule kernels and the training step")
    bench.add_argument("--config", default="tiny", help="config file or preset name (default: tiny)")
    bench.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    bench.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    bench.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs, figures mean nothing")
    bench.set_defaults(func=cmd_bench)

    data = sub.add_parser("data", help="inspect a data source")
    data.add_argument("what", choices=["info"], help="info: items per split and what was skipped")
    data.add_argument("--data", default="builtin", help="builtin | flickr8k:DIR | folder:DIR (default: builtin)")
    data.add_argument("--json", action="store_true", help="print one JSON object")
    data.set_defaults(func=cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, UserError) as err:
        _stderr(f"nlmm: {err}")
        return 2
    except KeyboardInterrupt:
        _stderr("nlmm: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
