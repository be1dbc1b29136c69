"""The studio's settings file as anything may leave it (an older version, another tool, a hand edit): every
value the studio reads replaced by generated ini text of any kind, and the window still opens, each setting
its default where it cannot be used."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = ("window/geometry", "window/state", "window/layout_version", "checkpoint/last", "config/last",
        "training/data", "gallery/source", "gallery/split", "gallery/size", "dataset/folder", "audio/device")
INI_VALUES = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00", exclude_categories=("Cs",)),
            max_size=20),
    st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(str),
    st.sampled_from(["@ByteArray(not a layout)", "@ByteArray()", "@Invalid()", "@Size(1 2)", "@Rect(0 0 -5 9)",
                     "@Point(1 2)", "@Variant(\\0\\0\\0\\x7f\\0\\0\\0\\x1fQStringList)", "@Variant(garbage)",
                     "a, b, c", "\"quoted, comma\"", "true", "-1", "1e400", "../../etc/passwd", "folder:", "builtin:"]))


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(values=st.dictionaries(st.sampled_from(KEYS), INI_VALUES, min_size=1, max_size=len(KEYS)))
def test_the_window_opens_whatever_the_settings_file_holds(make_window, tmp_path, values):
    ini = tmp_path / "settings.ini"
    # QSettings' ini groups: "window/state" is key "state" of group [window]
    groups: dict[str, list[str]] = {}
    for key, value in values.items():
        group, name = key.split("/", 1)
        groups.setdefault(group, []).append(f"{name}={value}")
    ini.write_text("\n".join(f"[{group}]\n" + "\n".join(entries) for group, entries in groups.items()) + "\n",
                   encoding="utf-8")
    window = make_window(load_checkpoint=False, gallery_size=None, checkpoint=None, config=None)
    assert window.isVisible()
    window.close()
