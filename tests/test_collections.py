"""Voice collections over HTTP: CRUD, ordering, duplicates, and the two-user (BOLA) rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.core.db import session_scope, utcnow
from app.voices.models import CollectionVoice, Voice
from app.voices.service import remove_voice_everywhere
from tests.plugins.services import Account, AppHarness, _build_harness, make_settings

BASE = "/api/v1/voice/collections"


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppHarness]:
    """The ordering and visibility queries run on both databases."""
    if request.param == "sqlite":
        yield request.getfixturevalue("embedded")
        return
    url = request.getfixturevalue("postgres_url")
    yield from _build_harness(make_settings(tmp_path / "data", database_url=url))


def make_voice(
    harness: AppHarness, owner: Account | None, name: str, *, is_public: bool = False
) -> dict[str, Any]:
    """A ready voice row; owner None makes a built-in voice."""
    with session_scope(harness.settings) as session:
        voice = Voice(
            name=name,
            owner_id=owner.user_id if owner else None,
            kind="custom" if owner else "builtin",
            status="completed",
            is_public=is_public,
        )
        session.add(voice)
        session.flush()
        return {"id": voice.id, "uuid": voice.uuid, "voice_id": voice.voice_id}


def create(harness: AppHarness, account: Account, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Podcast")
    r = harness.client.post(BASE, json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()


def member_rows(harness: AppHarness) -> list[tuple[int, int]]:
    with session_scope(harness.settings) as session:
        rows = session.execute(select(CollectionVoice.collection_id, CollectionVoice.voice_id)).all()
        return [(int(a), int(b)) for a, b in rows]


def test_crud_round_trip(any_db: AppHarness) -> None:
    c, alice = any_db.client, any_db.make_user()
    v1, v2 = make_voice(any_db, alice, "one"), make_voice(any_db, alice, "two")

    created = create(
        any_db,
        alice,
        name="  My Podcast Voices ",
        description="for the show",
        voice_ids=[v1["voice_id"], v2["voice_id"]],
        tags=["podcast", "production"],
    )
    assert created["collection_id"].startswith("collection_")
    assert created["name"] == "My Podcast Voices"
    assert created["description"] == "for the show"
    assert created["voice_ids"] == [v1["voice_id"], v2["voice_id"]]
    assert created["tags"] == ["podcast", "production"]
    assert created["is_public"] is False
    assert created["created_at"] and created["updated_at"]
    assert set(created) == {
        "collection_id",
        "name",
        "description",
        "voice_ids",
        "tags",
        "is_public",
        "created_at",
        "updated_at",
    }
    cid = created["collection_id"]

    assert c.get(f"{BASE}/{cid}", headers=alice.headers).json() == created

    r = c.patch(f"{BASE}/{cid}", json={"name": "Renamed", "is_public": True}, headers=alice.headers)
    assert r.status_code == 200
    patched = r.json()
    assert patched["name"] == "Renamed" and patched["is_public"] is True
    # PATCH semantics: fields not sent keep their values.
    assert patched["description"] == "for the show" and patched["tags"] == ["podcast", "production"]
    assert patched["voice_ids"] == created["voice_ids"]
    assert patched["updated_at"] >= created["updated_at"]

    r = c.patch(f"{BASE}/{cid}", json={"description": None, "tags": []}, headers=alice.headers)
    assert r.status_code == 200 and r.json()["description"] is None and r.json()["tags"] == []
    assert r.json()["name"] == "Renamed"

    r = c.delete(f"{BASE}/{cid}", headers=alice.headers)
    assert r.status_code == 204 and r.content == b""
    assert c.get(f"{BASE}/{cid}", headers=alice.headers).status_code == 404
    assert c.delete(f"{BASE}/{cid}", headers=alice.headers).status_code == 404
    assert member_rows(any_db) == []


def test_list_pages_own_collections_newest_first(embedded: AppHarness) -> None:
    c, alice, bob = embedded.client, embedded.make_user(), embedded.make_user()
    ids = [create(embedded, alice, name=f"c{i}")["collection_id"] for i in range(3)]
    create(embedded, bob, name="bob's", is_public=True)

    r = c.get(BASE, headers=alice.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3 and body["hasMore"] is False
    assert [x["collection_id"] for x in body["collections"]] == ids[::-1]

    page = c.get(BASE, params={"limit": 2}, headers=alice.headers).json()
    assert len(page["collections"]) == 2 and page["total"] == 3 and page["hasMore"] is True
    page = c.get(BASE, params={"skip": 2, "limit": 2}, headers=alice.headers).json()
    assert [x["collection_id"] for x in page["collections"]] == [ids[0]] and page["hasMore"] is False


def test_add_and_remove_voices_by_any_ref_keeping_order(any_db: AppHarness) -> None:
    c, alice = any_db.client, any_db.make_user()
    a, b, d = (make_voice(any_db, alice, n) for n in ("a", "b", "d"))
    builtin = make_voice(any_db, None, "builtin")
    cid = create(any_db, alice, voice_ids=[b["voice_id"]])["collection_id"]

    r = c.post(
        f"{BASE}/{cid}/voices",
        json={"voice_ids": [str(a["id"]), d["uuid"], builtin["id"]]},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["voice_ids"] == [b["voice_id"], a["voice_id"], d["voice_id"], builtin["voice_id"]]

    # Duplicates (already present, or the same voice twice under different refs) are ignored.
    r = c.post(
        f"{BASE}/{cid}/voices",
        json={"voice_ids": [a["voice_id"], b["uuid"], str(b["id"])]},
        headers=alice.headers,
    )
    assert r.status_code == 200
    assert r.json()["voice_ids"] == [b["voice_id"], a["voice_id"], d["voice_id"], builtin["voice_id"]]

    r = c.delete(f"{BASE}/{cid}/voices/{a['uuid']}", headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["voice_ids"] == [b["voice_id"], d["voice_id"], builtin["voice_id"]]
    r = c.delete(f"{BASE}/{cid}/voices/{a['voice_id']}", headers=alice.headers)
    assert r.status_code == 404 and "detail" in r.json()
    r = c.delete(f"{BASE}/{cid}/voices/voice_doesnotexist", headers=alice.headers)
    assert r.status_code == 404

    # Re-adding goes to the end.
    r = c.post(f"{BASE}/{cid}/voices", json={"voice_ids": [a["voice_id"]]}, headers=alice.headers)
    assert r.json()["voice_ids"] == [b["voice_id"], d["voice_id"], builtin["voice_id"], a["voice_id"]]


def test_duplicates_on_create_are_ignored(embedded: AppHarness) -> None:
    alice = embedded.make_user()
    v = make_voice(embedded, alice, "v")
    created = create(embedded, alice, voice_ids=[v["voice_id"], v["voice_id"], v["id"], v["uuid"]])
    assert created["voice_ids"] == [v["voice_id"]]


def test_unknown_voice_adds_nothing(embedded: AppHarness) -> None:
    c, alice = embedded.client, embedded.make_user()
    v = make_voice(embedded, alice, "v")
    r = c.post(BASE, json={"name": "x", "voice_ids": [v["voice_id"], "voice_nope"]}, headers=alice.headers)
    assert r.status_code == 404 and r.json() == {"detail": "Voice not found: voice_nope"}
    assert c.get(BASE, headers=alice.headers).json()["total"] == 0

    cid = create(embedded, alice)["collection_id"]
    r = c.post(f"{BASE}/{cid}/voices", json={"voice_ids": [v["voice_id"], "999999"]}, headers=alice.headers)
    assert r.status_code == 404 and r.json() == {"detail": "Voice not found: 999999"}
    assert member_rows(embedded) == []


def test_other_users_private_collection_is_404(embedded: AppHarness) -> None:
    c, alice, bob = embedded.client, embedded.make_user(), embedded.make_user()
    v = make_voice(embedded, alice, "v")
    cid = create(embedded, alice, voice_ids=[v["voice_id"]])["collection_id"]

    assert c.get(f"{BASE}/{cid}", headers=bob.headers).json() == {"detail": "Collection not found"}
    assert c.get(f"{BASE}/{cid}", headers=bob.headers).status_code == 404
    assert c.patch(f"{BASE}/{cid}", json={"name": "mine"}, headers=bob.headers).status_code == 404
    assert c.delete(f"{BASE}/{cid}", headers=bob.headers).status_code == 404
    bob_voice = make_voice(embedded, bob, "bv")
    r = c.post(f"{BASE}/{cid}/voices", json={"voice_ids": [bob_voice["voice_id"]]}, headers=bob.headers)
    assert r.status_code == 404
    assert c.delete(f"{BASE}/{cid}/voices/{v['voice_id']}", headers=bob.headers).status_code == 404
    assert c.get(BASE, headers=bob.headers).json()["total"] == 0

    # Nothing changed for the owner.
    mine = c.get(f"{BASE}/{cid}", headers=alice.headers).json()
    assert mine["name"] == "Podcast" and mine["voice_ids"] == [v["voice_id"]]


def test_other_users_public_collection_is_readable_but_not_changeable(any_db: AppHarness) -> None:
    c, alice, bob = any_db.client, any_db.make_user(), any_db.make_user()
    private = make_voice(any_db, alice, "private")
    public = make_voice(any_db, alice, "public", is_public=True)
    cid = create(any_db, alice, is_public=True, voice_ids=[private["voice_id"], public["voice_id"]])[
        "collection_id"
    ]

    r = c.get(f"{BASE}/{cid}", headers=bob.headers)
    assert r.status_code == 200
    # A public collection never reveals its owner's private voice ids to others.
    assert r.json()["voice_ids"] == [public["voice_id"]]
    assert c.get(f"{BASE}/{cid}", headers=alice.headers).json()["voice_ids"] == [
        private["voice_id"],
        public["voice_id"],
    ]

    assert c.patch(f"{BASE}/{cid}", json={"name": "mine"}, headers=bob.headers).status_code == 403
    assert c.delete(f"{BASE}/{cid}", headers=bob.headers).status_code == 403
    r = c.post(f"{BASE}/{cid}/voices", json={"voice_ids": [public["voice_id"]]}, headers=bob.headers)
    assert r.status_code == 403 and "detail" in r.json()
    assert c.delete(f"{BASE}/{cid}/voices/{public['voice_id']}", headers=bob.headers).status_code == 403
    assert c.get(f"{BASE}/{cid}", headers=alice.headers).json()["name"] == "Podcast"


def test_cannot_add_another_users_private_voice(embedded: AppHarness) -> None:
    c, alice, bob = embedded.client, embedded.make_user(), embedded.make_user()
    alice_private = make_voice(embedded, alice, "secret")
    alice_public = make_voice(embedded, alice, "shared", is_public=True)
    builtin = make_voice(embedded, None, "joe")
    bob_voice = make_voice(embedded, bob, "own")
    cid = create(embedded, bob, voice_ids=[bob_voice["voice_id"]])["collection_id"]

    for ref in (alice_private["voice_id"], alice_private["uuid"], str(alice_private["id"])):
        r = c.post(
            f"{BASE}/{cid}/voices", json={"voice_ids": [alice_public["voice_id"], ref]}, headers=bob.headers
        )
        assert r.status_code == 404 and r.json() == {"detail": f"Voice not found: {ref}"}
    assert c.get(f"{BASE}/{cid}", headers=bob.headers).json()["voice_ids"] == [bob_voice["voice_id"]]
    r = c.post(BASE, json={"name": "x", "voice_ids": [alice_private["voice_id"]]}, headers=bob.headers)
    assert r.status_code == 404

    r = c.post(
        f"{BASE}/{cid}/voices",
        json={"voice_ids": [alice_public["voice_id"], builtin["uuid"]]},
        headers=bob.headers,
    )
    assert r.status_code == 200
    assert r.json()["voice_ids"] == [bob_voice["voice_id"], alice_public["voice_id"], builtin["voice_id"]]


def test_voice_that_becomes_unreadable_drops_out(embedded: AppHarness) -> None:
    c, alice, bob = embedded.client, embedded.make_user(), embedded.make_user()
    alice_public = make_voice(embedded, alice, "shared", is_public=True)
    own = make_voice(embedded, bob, "own")
    cid = create(embedded, bob, voice_ids=[alice_public["voice_id"], own["voice_id"]])["collection_id"]
    with session_scope(embedded.settings) as session:
        session.get(Voice, alice_public["id"]).is_public = False  # type: ignore[union-attr]
    assert c.get(f"{BASE}/{cid}", headers=bob.headers).json()["voice_ids"] == [own["voice_id"]]


def test_soft_deleted_voice_disappears_and_remove_everywhere(any_db: AppHarness) -> None:
    c, alice = any_db.client, any_db.make_user()
    keep, gone = make_voice(any_db, alice, "keep"), make_voice(any_db, alice, "gone")
    first = create(any_db, alice, voice_ids=[gone["voice_id"], keep["voice_id"]])["collection_id"]
    second = create(any_db, alice, voice_ids=[gone["voice_id"]])["collection_id"]

    with session_scope(any_db.settings) as session:
        session.get(Voice, gone["id"]).deleted_at = utcnow()  # type: ignore[union-attr]
    assert c.get(f"{BASE}/{first}", headers=alice.headers).json()["voice_ids"] == [keep["voice_id"]]
    assert c.get(f"{BASE}/{second}", headers=alice.headers).json()["voice_ids"] == []
    listed = c.get(BASE, headers=alice.headers).json()["collections"]
    assert all(gone["voice_id"] not in x["voice_ids"] for x in listed)
    # A deleted voice can no longer be added.
    r = c.post(f"{BASE}/{second}/voices", json={"voice_ids": [gone["voice_id"]]}, headers=alice.headers)
    assert r.status_code == 404

    with session_scope(any_db.settings) as session:
        assert remove_voice_everywhere(session, gone["id"]) == 2
        assert remove_voice_everywhere(session, gone["id"]) == 0
    assert [v for _, v in member_rows(any_db)] == [keep["id"]]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "needle"),
    [
        ("post", BASE, {"json": {"name": ""}}, "name"),
        ("post", BASE, {"json": {"name": "   "}}, "name"),
        ("post", BASE, {"json": {"name": "x" * 201}}, "name"),
        ("post", BASE, {"json": {}}, "name"),
        ("post", BASE, {"json": {"name": "ok", "colour": "red"}}, "colour"),
        ("post", BASE, {"json": {"name": "ok", "tags": "podcast"}}, "tags"),
        ("post", BASE, {"json": {"name": "ok", "voice_ids": ["v"] * 101}}, "voice_ids"),
        ("get", BASE, {"params": {"limit": 0}}, "limit"),
        ("get", BASE, {"params": {"limit": 101}}, "limit"),
        ("get", BASE, {"params": {"skip": -1}}, "skip"),
    ],
)
def test_validation_is_400_in_native_shape(
    embedded: AppHarness, method: str, path: str, kwargs: dict[str, Any], needle: str
) -> None:
    alice = embedded.make_user()
    r = getattr(embedded.client, method)(path, headers=alice.headers, **kwargs)
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and needle in body["detail"]


def test_body_validation_on_existing_collection(embedded: AppHarness) -> None:
    c, alice = embedded.client, embedded.make_user()
    cid = create(embedded, alice)["collection_id"]
    for body in ({"name": ""}, {"name": None}, {"tags": None}, {"is_public": None}, {"owner_id": 2}):
        r = c.patch(f"{BASE}/{cid}", json=body, headers=alice.headers)
        assert r.status_code == 400 and set(r.json()) == {"detail"}, (body, r.text)
    for body in ({"voice_ids": []}, {}, {"voice_ids": ["a"], "extra": 1}, {"voice_ids": [True]}):
        r = c.post(f"{BASE}/{cid}/voices", json=body, headers=alice.headers)
        assert r.status_code == 400 and set(r.json()) == {"detail"}, (body, r.text)
    assert c.get(f"{BASE}/{cid}", headers=alice.headers).json()["name"] == "Podcast"


def test_requires_authentication(embedded: AppHarness) -> None:
    r = embedded.client.get(BASE)
    assert r.status_code == 401 and r.json() == {"detail": "Invalid or missing API key"}
