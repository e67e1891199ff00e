"""Bearer-token auth against the real registry in token mode, with a token service of the test's own.

The registry answers a bare request with ``401`` and ``WWW-Authenticate: Bearer
realm=…,service=…,scope=…``; the engine asks the realm for a token with its
credentials and sends it. Tokens are cached per scope and credentials until they
expire, so the token service is asked once per scope, not once per request.
"""

from __future__ import annotations

import os
import time

import pytest

from engine.api import Engine
from engine.errors import Unauthorized
from engine.images.writer import build_image, layer_tar
from engine.registry.auth import Credentials
from tests.engine.conftest import PASSWORD, READER, USER, world

pytestmark = pytest.mark.integration

ALICE = Credentials(USER, PASSWORD)


def push_to(engine, registry, token_registry, repo, tag="1"):
    """Get an image into ``engine`` from the plain registry, then push it to the token registry as alice."""
    image = build_image([layer_tar({"a": os.urandom(30_000)}), layer_tar({"b": b"second layer"})])
    registry.push(f"{repo}/src", "1", image)
    engine.pull(f"{registry.host}/{repo}/src:1")
    target = f"{token_registry.registry.host}/{repo}:{tag}"
    engine.tag(f"{registry.host}/{repo}/src:1", target)
    return image, target, engine.push(target, credentials=ALICE)


def authorized_gets(token_registry, repo) -> list[str]:
    return [line for line in token_registry.registry.log_text().splitlines()
            if f'"GET /v2/{repo}/' in line and '" 200 ' in line]


def test_push_and_pull_with_a_bearer_token_ask_the_token_service_once_per_scope(
        engine, registry, token_registry, repo, tmp_path, settings):
    image, target, pushed = push_to(engine, registry, token_registry, repo)
    fresh = Engine(tmp_path / "fresh-root", settings=settings)

    pulled = fresh.pull(target, credentials=ALICE)

    assert pushed.digest == image.manifest_digest
    assert pulled.image_id == image.id
    assert (fresh.layer_stack(image.id)[1] / "b").read_bytes() == b"second layer"
    tokens = token_registry.tokens
    assert [(r.user, r.granted) for r in tokens.asked(f"repository:{repo}:pull,push")] == [(USER, True)]
    assert [(r.user, r.granted) for r in tokens.asked(f"repository:{repo}:pull")] == [(USER, True)]
    assert len(tokens.asked()) == 2
    # manifest, config and two layers: four requests the one pull token opened
    assert len(authorized_gets(token_registry, repo)) >= 4


def test_a_token_is_fetched_again_once_it_has_expired(engine, registry, token_registry, repo, tmp_path, settings):
    _, target, _ = push_to(engine, registry, token_registry, repo)
    tokens = token_registry.tokens
    tokens.expires_in = 2
    fresh = Engine(tmp_path / "fresh-root", settings=settings)
    fresh.pull(target, credentials=ALICE)
    first = tokens.asked(f"repository:{repo}:pull")
    assert len(first) == 1

    # The token's lifetime is what is under test: there is nothing to poll but the clock.
    time.sleep(max(0.0, first[0].at + tokens.expires_in - time.monotonic()))
    fresh.pull(target, credentials=ALICE)
    again = tokens.asked(f"repository:{repo}:pull")
    fresh.pull(target, credentials=ALICE)

    assert len(again) == 2 and again[1].granted
    assert len(tokens.asked(f"repository:{repo}:pull")) == 2  # the new token is cached in its turn


def test_a_token_the_registry_refuses_before_its_expiry_is_replaced_not_reported(
        engine, registry, token_registry, repo, tmp_path, settings):
    _, target, _ = push_to(engine, registry, token_registry, repo)
    tokens = token_registry.tokens
    tokens.stale_next = 1  # said to live 300 s, but already past the registry's leeway
    fresh = Engine(tmp_path / "fresh-root", settings=settings)

    pulled = fresh.pull(target, credentials=ALICE)

    assert [r.granted for r in tokens.asked(f"repository:{repo}:pull")] == [True, True]
    assert [i.id for i in fresh.list_images()] == [pulled.image_id]


def test_wrong_credentials_at_the_token_service_name_the_registry_and_the_user(
        engine, registry, token_registry, repo, tmp_path, settings):
    _, target, _ = push_to(engine, registry, token_registry, repo)
    fresh = Engine(tmp_path / "fresh-root", settings=settings)

    with pytest.raises(Unauthorized) as err:
        fresh.pull(target, credentials=Credentials("mallory", "guess"))

    message = str(err.value)
    assert token_registry.registry.host in message and "'mallory'" in message and "password" in message
    assert [(r.user, r.granted) for r in token_registry.tokens.asked()][-1] == ("mallory", False)
    assert fresh.list_images() == []
    assert world(tmp_path / "fresh-root")["blobs"] == []


def test_anonymous_pulls_from_a_token_registry_say_what_to_do(engine, registry, token_registry, repo, tmp_path,
                                                              settings):
    _, target, _ = push_to(engine, registry, token_registry, repo)
    fresh = Engine(tmp_path / "fresh-root", settings=settings)

    with pytest.raises(Unauthorized, match="refused anonymous access: give credentials") as err:
        fresh.pull(target)

    assert token_registry.registry.host in str(err.value)
    assert fresh.list_images() == []


def test_a_wrong_password_never_gets_the_token_cached_for_the_right_one(
        engine, registry, token_registry, repo, tmp_path, settings):
    _, target, _ = push_to(engine, registry, token_registry, repo)
    fresh = Engine(tmp_path / "fresh-root", settings=settings)
    fresh.pull(target, credentials=ALICE)
    other = Engine(tmp_path / "other-root", settings=settings)

    with pytest.raises(Unauthorized, match=f"refused the credentials of user '{USER}'"):
        other.pull(target, credentials=Credentials(USER, "not-" + PASSWORD))

    assert other.list_images() == []
    assert [r.granted for r in token_registry.tokens.asked(f"repository:{repo}:pull")] == [True, False]


def test_a_user_without_push_rights_is_told_which_access_is_missing(engine, registry, token_registry, repo):
    _, target, _ = push_to(engine, registry, token_registry, repo)
    engine.tag(target, f"{token_registry.registry.host}/{repo}:2")

    with pytest.raises(Unauthorized) as err:
        engine.push(f"{token_registry.registry.host}/{repo}:2", credentials=READER)

    message = str(err.value)
    assert token_registry.registry.host in message and f"user '{READER.username}'" in message
    assert f"repository:{repo}:" in message and "push" in message
    puts = [line for line in token_registry.registry.log_text().splitlines() if f'"PUT /v2/{repo}/manifests/2 ' in line]
    assert puts and all('" 401 ' in line for line in puts)  # refused each time, never stored
