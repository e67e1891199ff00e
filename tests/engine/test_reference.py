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


@pytest.mark.parametrize("text, message", [
    ("", "invalid reference format: the image name is empty"),
    (None, "invalid reference format: the image name is empty"),
    ("Busybox", "invalid reference format: repository name must be lowercase: 'Busybox'"),
    ("app name", "invalid reference format: 'app name'"),
    ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings"),
    ("a" * 256, "invalid reference format: repository name must not be more than 255 characters"),
    ("app@sha256:" + "a" * 63, f"invalid reference format: 'sha256:{'a' * 63}' is not a sha256 digest of 64 hex digits"),
    ("app@sha256:" + "a" * 65, f"invalid reference format: 'sha256:{'a' * 65}' is not a sha256 digest of 64 hex digits"),
    ("app@md5:" + "a" * 32, "invalid reference format: unsupported digest algorithm 'md5'"),
])
def test_each_refusal_says_what_is_wrong(text, message):
    with pytest.raises(InvalidArgument) as err:
        parse(text)
    assert str(err.value) == message


def test_a_name_of_255_characters_is_the_longest_allowed():
    assert parse("a" * 255).path == "library/" + "a" * 255


def test_sha512_digests_are_taken_whole():
    ref = parse("app@sha512:" + "d" * 128)
    assert (ref.tag, ref.digest) == (None, "sha512:" + "d" * 128)
    assert str(ref) == "docker.io/library/app@sha512:" + "d" * 128


def test_a_first_part_is_a_registry_only_with_a_dot_a_port_or_localhost():
    # Docker's rule would make a first part with capitals a registry host; nobody means that, so
    # it is refused at once, before any lookup of a host of that name (issue 11).
    with pytest.raises(InvalidArgument, match=r"invalid reference format: repository name \(Team/app\)"):
        parse("Team/app")
    assert (parse("My.Registry/app").domain, parse("Reg:5000/app").domain) == ("My.Registry", "Reg:5000")
    cases = {
        "team/app": ("docker.io", "team/app"),
        "my.registry/app": ("my.registry", "app"),
        "reg:5000/app": ("reg:5000", "app"),
        "localhost/app": ("localhost", "app"),
        "index.docker.io/app": ("docker.io", "library/app"),
        "docker.io/app": ("docker.io", "library/app"),
        "docker.io/library/a/b": ("docker.io", "library/a/b"),
    }
    for text, (domain, path) in cases.items():
        ref = parse(text)
        assert (ref.domain, ref.path) == (domain, path), text
    assert parse("docker.io/library/a/b").familiar == "library/a/b:latest"   # only library/<one> is shortened
    assert parse("docker.io/team/library").familiar == "team/library:latest"
    assert parse("my.registry/library/app").familiar == "my.registry/library/app:latest"


def test_tag_digest_and_name_only_make_new_references_of_the_same_repository():
    ref = parse("127.0.0.1:5000/team/app:1.2@sha256:" + "e" * 64)
    assert str(ref.with_tag("2.0")) == "127.0.0.1:5000/team/app:2.0"
    assert ref.with_tag("2.0").digest is None
    assert str(ref.with_digest("sha256:" + "f" * 64)) == "127.0.0.1:5000/team/app@sha256:" + "f" * 64
    assert ref.with_digest("sha256:" + "f" * 64).tag is None
    assert str(ref.name_only) == "127.0.0.1:5000/team/app"
    assert (ref.name_only.tag, ref.name_only.digest) == (None, None)
    assert ref.repository == "127.0.0.1:5000/team/app"
    assert parse("busybox", default_tag=False).tag is None


def test_a_repository_alone_takes_no_tag_and_no_digest():
    from engine.reference import parse_repository

    ref = parse_repository("team/app")
    assert (str(ref), ref.tag, ref.digest) == ("docker.io/team/app", None, None)
    for text in ("team/app:1", "team/app@sha256:" + "a" * 64, "team/app:1@sha256:" + "a" * 64):
        with pytest.raises(InvalidArgument) as err:
            parse_repository(text)
        assert str(err.value) == f"invalid repository name {text!r}: a tag or digest is not allowed here"
    with pytest.raises(InvalidArgument) as err:
        parse_repository("Team")
    assert "must be lowercase" in str(err.value)


def test_platform_names_are_folded_to_oci_names():
    aliases = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
               "i386": "386", "riscv64": "riscv64"}
    for given, oci in aliases.items():
        assert parse_platform(f"linux/{given}").architecture == oci, given
    p = parse_platform(" Linux/ARM/v7 ")
    assert (p.os, p.architecture, p.variant, str(p)) == ("linux", "arm", "v7", "linux/arm/v7")
    assert parse_platform("linux/amd64").variant == ""


@pytest.mark.parametrize("text", ["linux", "linux/", "/arm64", "linux/arm/v7/x", "linux//v7", "", None])
def test_a_platform_needs_an_os_and_an_architecture_and_at_most_a_variant(text):
    with pytest.raises(InvalidArgument) as err:
        parse_platform(text)
    assert str(err.value) == f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/arm64"
