"""One name for every data source: `builtin`, `flickr8k:DIR`, `folder:DIR`.

Loading a large source looks at every file it names (thousands for Flickr8k): `progress(done, total)`
is called along the way, and an exception it raises (the user cancelled) abandons the loading.
"""
from __future__ import annotations

from typing import Callable

from engine.data.dataset import DataSplits, Item
from engine.data.errors import DataError

SOURCES = ("builtin", "flickr8k:DIR", "folder:DIR")


def load_builtin() -> DataSplits:
    from engine.data.builtin import BUILTIN_ROOT
    from engine.data.number_images import NumberImageSynth
    return DataSplits("builtin", builtin_splits(), image_synth=NumberImageSynth.from_folder(BUILTIN_ROOT))


def builtin_splits(splits: tuple[str, ...] | None = None) -> dict[str, list[Item]]:
    """The built-in data set's items by split, every split or the `splits` asked."""
    from engine.data.builtin import load_builtin_manifest
    from engine.vocabulary import SPLITS
    return {split: [Item(image=i.image, text=i.text, audio=i.audio, label=i.label, key=str(i.label))
                    for i in items]
            for split, items in load_builtin_manifest(splits=splits or SPLITS).items()}


Progress = Callable[[float, float], None]


def load_source(spec: str, progress: Progress | None = None) -> DataSplits:
    kind, _, path = spec.partition(":")
    if kind == "builtin" and not path:
        if progress:
            progress(0, 1)
        data = load_builtin()
        if progress:
            progress(1, 1)
        return data
    if kind == "flickr8k" and path:
        from engine.data.flickr8k import load_flickr8k
        return load_flickr8k(path, progress)
    if kind == "folder" and path:
        from engine.data.folder import load_folder
        return load_folder(path, progress)
    raise DataError(f"data source '{spec}': expected one of {', '.join(SOURCES)}")
