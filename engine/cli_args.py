"""argparse types shared by the CLI and the benchmarks' own arguments: a bad value is refused before any work."""
from __future__ import annotations

import argparse


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0 (`--budget -1` is refused before any work)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got '{text}'") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0 seconds, got {text}")
    return value


def at_most(high: int, parse):
    """An argparse type: what `parse` reads, and no more than `high`."""
    def bounded(text: str):
        value = parse(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value
    return bounded


def at_least(low: int):
    """An argparse type: a whole number >= low (`--steps 0`, `--k -3` are refused before any work)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def some_of(choices, in_their_order: bool = False):
    """An argparse type: some of `choices` joined by commas (`--learn-only audio,text`), in the order given
    or, with `in_their_order`, in the order of `choices`; an unknown or empty list is refused."""
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names or any(name not in choices for name in names):
            raise argparse.ArgumentTypeError(f"expected some of {', '.join(choices)} joined by commas, got '{text}'")
        return [c for c in choices if c in names] if in_their_order else names
    return parse


def checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """`--checkpoint PATH`, the shipped demo model when not given (every benchmark that asks a model)."""
    from engine.paths import DEFAULT_CHECKPOINT
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="default: the shipped demo model")
