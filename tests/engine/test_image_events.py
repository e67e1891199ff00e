"""Image events in the journal, from real pulls and pushes against a registry on loopback."""

from __future__ import annotations

import pytest

from engine.events import EventFilter, Journal
from engine.images.writer import build_image, layer_tar

pytestmark = pytest.mark.integration


def test_image_operations_journal_pull_tag_push_save_untag_delete_and_load(engine, engine_root, registry, repo,
                                                                            tmp_path):
    image = build_image([layer_tar({"bin/": None, "bin/hello": b"hi" * 100})], config={"Labels": {"team": "berth"}})
    registry.push(repo, "1", image)
    ref = f"{registry.host}/{repo}:1"
    pushed = f"{registry.host}/{repo}-copy:3"
    engine.pull(ref)
    engine.tag(ref, "local/mine:2")
    engine.tag(ref, pushed)
    engine.push(pushed)
    with (tmp_path / "saved.tar").open("wb") as out:
        engine.save([ref], out)
    engine.remove_image(image.id, force=True)
    engine.load(tmp_path / "saved.tar")

    got = [(ev.action, ev.actor_id, ev.attributes.get("name"))
           for ev in Journal(engine_root).read(filters=EventFilter.parse(["type=image"]))]
    assert got[:5] == [("pull", ref, f"{registry.host}/{repo}"), ("tag", image.id, "local/mine:2"),
                       ("tag", image.id, pushed), ("push", pushed, f"{registry.host}/{repo}-copy"),
                       ("save", image.id, image.id)]
    untags = got[5:-2]
    assert len(untags) == 5 and all(u == ("untag", image.id, image.id) for u in untags)  # 3 tags, 2 repo digests
    assert got[-2:] == [("delete", image.id, image.id), ("load", image.id, image.id)]
    pull = next(Journal(engine_root).read(filters=EventFilter.parse(["event=pull"])))
    assert pull.attributes == {"team": "berth", "name": f"{registry.host}/{repo}"}  # the image's labels, as Docker's
    # Docker's image filter finds them by the name with or without its tag.
    assert [ev.action for ev in Journal(engine_root).read(filters=EventFilter.parse([f"image={ref}"]))] == ["pull"]
    assert [ev.action for ev in Journal(engine_root).read(
        filters=EventFilter.parse([f"image={registry.host}/{repo}"]))] == ["pull"]
    assert [ev.action for ev in Journal(engine_root).read(filters=EventFilter.parse(["image=local/mine"]))] == ["tag"]
