"""The Joint space panel with the real engine: the gallery's map, the query's star and lines to its top k,
hover, a redraw for a new model, and nothing asked or drawn behind its tab."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from engine.vocabulary import MODALITIES


def _map_shown(window, qtbot, neighbourhood: bool = False):
    """The panel in front with its map drawn: PCA only (the map then stays put under the mouse), or with
    `neighbourhood` the t-SNE layout that follows it."""
    panel = window.joint_panel
    panel.neighbourhood.setChecked(neighbourhood)
    window.show_panel("joint")
    qtbot.waitUntil(lambda: panel.map is not None and panel._drawn is panel.map, timeout=30_000)
    return panel


def _ask(window, qtbot, text: str):
    """A text query typed in the Retrieval panel -> (its answer, the star's data), the star checked to be
    where the map places the answer's embedding."""
    retrieval, panel = window.retrieval_panel, window.joint_panel
    with qtbot.waitSignal(retrieval.results.shown, timeout=30_000) as blocker:
        retrieval.text.setText(text)
        retrieval.query_text()
    answer = blocker.args[0]
    star = panel.query_item.getData()
    np.testing.assert_allclose([star[0][0], star[1][0]], panel.map.place(answer.embedding), atol=1e-5)
    return answer, star


def test_the_map_shows_every_gallery_item_and_the_query_with_lines_to_its_hits(ready_window, qtbot):
    window = ready_window
    panel = _map_shown(window, qtbot)
    sizes = window.host.retrieval.retriever.gallery_sizes()
    for code, modality in enumerate(MODALITIES):
        assert len(panel.scatter[modality].data) == sizes.get(modality, 0), modality
    assert "points" in panel.status.text() and "variance" in panel.status.text()

    retrieval = window.retrieval_panel
    answer, star = _ask(window, qtbot, "forty two")
    hits = [hit for hits in answer.results.values() for hit in hits]
    x, y = panel.lines.getData()
    assert len(x) == 2 * len(hits) == 2 * retrieval.k.value() * len(answer.results)
    ends = np.stack([x[1::2], y[1::2]], axis=1)
    np.testing.assert_allclose(ends, panel.map.points[[panel.map.row_of(h) for h in hits]], atol=1e-5)
    assert np.allclose(x[0::2], star[0][0]), "every line starts at the query"


def test_hovering_a_point_shows_its_item(ready_window, qtbot):
    panel = _map_shown(ready_window, qtbot)
    row = _loneliest(panel, "text")
    QTest.mouseMove(panel.plot_widget.viewport(), _on_screen(panel, qtbot, row))
    qtbot.waitUntil(lambda: "Caption" in panel.info.text(), timeout=5_000)
    assert panel.map.names[row] in panel.info.text()


def _loneliest(panel, modality: str) -> int:
    """The point of `modality` farthest from every other: the mouse must not land on a point drawn over it."""
    points, rows = panel.map.points, np.flatnonzero(panel.map.modalities == MODALITIES.index(modality))
    gaps = [np.linalg.norm(np.delete(points, r, axis=0) - points[r], axis=1).min() for r in rows]
    return int(rows[np.argmax(gaps)])


def _on_screen(panel, qtbot, row: int) -> QPoint:
    """Where point `row` is drawn, once the view's auto-range has settled (it is applied as the view paints)."""
    qtbot.waitExposed(panel.plot_widget)
    for _ in range(3):
        panel.plot_widget.viewport().repaint()
        qtbot.wait(50)
    where = panel.plot_widget.mapFromScene(panel.plot.vb.mapViewToScene(pg_point(panel.map.points[row])))
    return QPoint(where.x(), where.y())


def pg_point(xy):
    from PySide6.QtCore import QPointF
    return QPointF(float(xy[0]), float(xy[1]))


def test_a_new_model_redraws_the_map_and_behind_its_tab_nothing_is_asked(ready_window, qtbot, checkpoint):
    window = ready_window
    panel = _map_shown(window, qtbot)
    first = panel.map
    window.show_panel("memory")
    qtbot.waitUntil(lambda: not panel.in_view, timeout=5_000)
    window.load_checkpoint(str(checkpoint))
    assert panel.map is None and "Loading" in panel.status.text()
    qtbot.waitUntil(lambda: window.retrieval_panel.gallery_ready, timeout=60_000)
    qtbot.wait(200)
    assert panel.map is None and panel.mapping is None and panel.stale, "behind its tab: no map asked for"
    window.show_panel("joint")
    qtbot.waitUntil(lambda: panel.map is not None and panel._drawn is panel.map, timeout=30_000)
    assert panel.map is not first
    assert not window.errors


def test_clicking_a_spoken_clip_on_the_map_plays_it(ready_window, qtbot):
    panel = _map_shown(ready_window, qtbot)
    row = _loneliest(panel, "audio")
    where = _on_screen(panel, qtbot, row)
    with qtbot.waitSignal(panel.play_requested, timeout=5_000) as blocker:
        QTest.mouseMove(panel.plot_widget.viewport(), where)
        QTest.mouseClick(panel.plot_widget.viewport(), Qt.LeftButton, Qt.NoModifier, where)
    assert blocker.args[0] == panel.map.names[row]


def test_colour_by_label_gives_a_number_one_colour_in_every_modality(ready_window, qtbot):
    panel = _map_shown(ready_window, qtbot)
    colours = {}
    assert panel.by_label.isChecked(), "coloured by label unless asked otherwise"
    assert panel._drawn is panel.map
    for modality, item in panel.scatter.items():
        for point in item.points():
            label = int(panel.map.labels[int(point.data())])
            colours.setdefault(label, set()).add(point.brush().color().name())
    assert len(colours) > 1
    assert all(len(seen) == 1 for seen in colours.values()), "one colour a label, whatever the modality"
    assert len({next(iter(seen)) for seen in colours.values()}) > 1, "labels get different colours"
    qtbot.mouseClick(panel.by_label, Qt.LeftButton)
    assert not panel.by_label.isChecked()
    for modality, item in panel.scatter.items():
        assert {p.brush().color().name() for p in item.points()} <= {pg_color(modality)}


def pg_color(modality):
    from studio.panels.joint_space_panel import COLORS
    return COLORS[modality]


def test_the_neighbourhood_map_follows_pca_with_progress_and_queries_land_among_their_hits(ready_window, qtbot):
    """PCA at once, then t-SNE on the files thread, its progress in the status line; queries are answered
    meanwhile; the star lands among its nearest items; unticking goes back to the PCA map at once."""
    window = ready_window
    panel = _map_shown(window, qtbot, neighbourhood=True)
    statuses = []
    qtbot.waitUntil(lambda: statuses.append(panel.status.text()) or panel.map.method == "tsne", timeout=120_000)
    assert any("Laying out neighbourhoods (t-SNE)" in text for text in statuses), statuses[-3:]
    assert "t-SNE layout" in panel.status.text()
    pca = panel.pca_map
    assert pca.method == "pca" and len(panel.map.points) == len(pca.points)
    assert panel.plot.getAxis("bottom").labelText == "t-SNE 1"

    answer, star = _ask(window, qtbot, "forty two")
    where = np.array([star[0][0], star[1][0]])
    # among the items nearest to it in the joint space: inside the box their points span on the map
    embedding = answer.embedding / np.linalg.norm(answer.embedding)
    nearest = panel.map.points[np.argsort(-(panel.map.embeddings @ embedding))[:panel.map.neighbours]]
    assert (nearest.min(0) - 1e-4 <= where).all() and (where <= nearest.max(0) + 1e-4).all()

    qtbot.mouseClick(panel.neighbourhood, Qt.LeftButton)
    assert panel.map is pca and "variance" in panel.status.text()
    qtbot.mouseClick(panel.neighbourhood, Qt.LeftButton)      # the layout is kept: back at once
    assert panel.map.method == "tsne"
    assert not window.errors
