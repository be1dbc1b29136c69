"""The parts of scripts/make_builtin_dataset.py: speech engines, fonts and strokes, rooms, Ogg writing."""
