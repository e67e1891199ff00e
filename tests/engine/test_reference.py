"""Image references parse exactly as Docker parses them, and bad ones fail before any network call."""

import pytest

from engine.errors import InvalidArgument
from engine.reference import parse, parse_platform


@pytest.mark.parametrize("text, canonical, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("team/app", "docker.io/team/app:latest", "team/app:latest"),
    ("127.0.0.1:5000/team/app:1.2", "127.0.0.1:5000/team/app:1.2", "127.0.0.1:5000/team/app:1.2"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b/c", "localhost:5000/a/b/c:latest", "localhost:5000/a/b/c:latest"),
    ("registry.example.org/app", "registry.example.org/app:latest", "registry.example.org/app:latest"),
    ("[::1]:5000/app:v1", "[::1]:5000/app:v1", "[::1]:5000/app:v1"),
    ("app@sha256:" + "a" * 64, "docker.io/library/app@sha256:" + "a" * 64, "app@sha256:" + "a" * 64),
    ("app:1@sha256:" + "b" * 64, "docker.io/library/app:1@sha256:" + "b" * 64, "app:1@sha256:" + "b" * 64),
    ("a__b-c/d.e_f", "docker.io/a__b-c/d.e_f:latest", "a__b-c/d.e_f:latest"),
])
def test_references_parse_as_docker_parses_them(text, canonical, familiar):
    ref = parse(text)
    assert str(ref) == canonical
    assert ref.familiar == familiar


def test_a_host_with_a_port_is_the_registry_and_not_a_tag():
    ref = parse("127.0.0.1:5000/app")
    assert (ref.domain, ref.path, ref.tag) == ("127.0.0.1:5000", "app", "latest")


def test_a_digest_alone_gets_no_default_tag():
    ref = parse("busybox@sha256:" + "c" * 64)
    assert ref.tag is None and ref.digest == "sha256:" + "c" * 64


@pytest.mark.parametrize("text", [
    "", "Busybox", "app/UPPER", "app:", "app:-bad", ":tag", "app@sha256:short", "app@md5:" + "a" * 32,
    "a" * 64, "app//x", "/app", "app/", "app:tag:tag", "-app", "app name", "x" * 256 + "/y",
])
def test_invalid_references_are_refused_with_a_clear_message(text):
    with pytest.raises(InvalidArgument) as err:
        parse(text)
    assert "invalid" in str(err.value)


def test_platforms_parse_with_and_without_variant():
    assert str(parse_platform("linux/arm64")) == "linux/arm64"
    assert parse_platform("linux/arm/v7").variant == "v7"
    assert parse_platform("linux/x86_64").architecture == "amd64"
    with pytest.raises(InvalidArgument):
        parse_platform("linux")
