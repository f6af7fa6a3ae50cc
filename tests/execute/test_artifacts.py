"""ArtifactCache against a real loopback HTTPS server (tests/fixtures/jarserver.py) and real files:
digests checked before anything is uploaded, typed errors, size and time limits, no secrets shown,
and unpinned jars hashed by their bytes (new bytes behind the same URL change the spec hash)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flink_gitops.errors import PermanentError, TemporaryError
from flink_gitops.execute.artifacts import ArtifactCache, ArtifactRefused, ArtifactUnavailable
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.settings import ArtifactDownload
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.hashing import jar_digest_of, spec_hash
from flink_gitops.specs.loader import DesiredJob, SpecLoader
from flink_gitops.specs.model import FlinkJob
from tests.fixtures.jarserver import JarServer
from tests.specs.helpers import spec_yaml, write_repo

JAR = b"PK\x03\x04 a jar served over https\n" * 100
JAR_SHA = hashlib.sha256(JAR).hexdigest()


def _spec(kind: str, location: str, sha: str | None) -> RunSpec:
    model = FlinkJob.model_validate(
        {"apiVersion": "flink-gitops/v1", "kind": "FlinkJob", "metadata": {"name": "a"},
         "spec": {"job": {"jarURI": location}}}
    )  # fmt: skip
    digest = jar_digest_of(sha) if sha else "url:x"
    return RunSpec(model, location, sha, digest, spec_hash(model, digest), jar_kind=kind)


def _cache(tmp_path: Path, server: JarServer, **kw: object) -> ArtifactCache:
    download = ArtifactDownload(ca_file=server.ca_file, **kw)
    return ArtifactCache(tmp_path / "jars", download=download, allow_unpinned=True)


def test_a_pinned_https_jar_is_downloaded_once_checked_and_cached(
    tmp_path: Path, jar_server: JarServer
) -> None:
    jar_server.files["app.jar"] = JAR
    cache = _cache(tmp_path, jar_server)
    path = cache.path_for(_spec("https", jar_server.url("/jars/app.jar"), JAR_SHA))
    assert path.read_bytes() == JAR
    assert path.name == f"{JAR_SHA}.jar"
    cache.path_for(_spec("https", jar_server.url("/jars/app.jar"), JAR_SHA))
    assert jar_server.hits["/jars/app.jar"] == 1


def test_a_wrong_pin_is_refused_naming_both_digests_and_nothing_is_cached(
    tmp_path: Path, jar_server: JarServer
) -> None:
    jar_server.files["app.jar"] = JAR
    wrong = "0" * 64
    with pytest.raises(ArtifactRefused) as caught:
        _cache(tmp_path, jar_server).path_for(_spec("https", jar_server.url("/jars/app.jar"), wrong))
    message = str(caught.value)
    assert message.startswith("refused:")
    assert JAR_SHA in message
    assert wrong in message
    assert isinstance(caught.value, PermanentError)
    assert not any((tmp_path / "jars").iterdir())  # no temporary file left either


def test_an_untrusted_certificate_is_refused(tmp_path: Path, jar_server: JarServer) -> None:
    jar_server.files["app.jar"] = JAR
    cache = ArtifactCache(tmp_path / "jars", allow_unpinned=True)  # system trust store only
    with pytest.raises(ArtifactRefused, match="certificate is not trusted"):
        cache.path_for(_spec("https", jar_server.url("/jars/app.jar"), JAR_SHA))


def test_more_bytes_than_the_limit_are_refused(tmp_path: Path, jar_server: JarServer) -> None:
    cache = _cache(tmp_path, jar_server, max_bytes=1_000_000)
    with pytest.raises(ArtifactRefused, match="larger than 1000000 bytes"):
        cache.path_for(_spec("https", jar_server.url("/endless"), None))
    with pytest.raises(ArtifactRefused, match="10737418240 bytes, more than 1000000"):
        cache.path_for(_spec("https", jar_server.url("/claims-huge"), None))
    assert [p.name for p in (tmp_path / "jars").iterdir()] == []


def test_a_slow_server_is_cut_off_at_the_deadline_and_retried_later(
    tmp_path: Path, jar_server: JarServer
) -> None:
    ticks = iter(range(0, 10_000, 10))  # an injected clock: 10 s per look
    cache = ArtifactCache(
        tmp_path / "jars",
        download=ArtifactDownload(ca_file=jar_server.ca_file, timeout_s=25),
        allow_unpinned=True,
        monotonic=lambda: float(next(ticks)),
    )
    with pytest.raises(ArtifactUnavailable, match="took longer than 25 s") as caught:
        cache.path_for(_spec("https", jar_server.url("/slow"), None))
    assert isinstance(caught.value, TemporaryError)


@pytest.mark.parametrize(
    ("path", "error", "text"),
    [
        ("/status/503", ArtifactUnavailable, "answered 503; retried later"),
        ("/status/404", ArtifactUnavailable, "answered 404"),
        ("/status/403", ArtifactRefused, "refused: .* answered 403"),
        ("/to-http", ArtifactRefused, "redirects to a non-https URL"),
    ],
)
def test_answers_are_typed(
    tmp_path: Path, jar_server: JarServer, path: str, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        _cache(tmp_path, jar_server).path_for(_spec("https", jar_server.url(path), JAR_SHA))


def test_nobody_listening_is_temporary(tmp_path: Path, jar_server: JarServer) -> None:
    url = jar_server.url("/jars/app.jar")
    jar_server.close()
    with pytest.raises(ArtifactUnavailable, match="could not be downloaded"):
        _cache(tmp_path, jar_server).path_for(_spec("https", url, JAR_SHA))


def test_query_tokens_never_appear_in_errors(tmp_path: Path, jar_server: JarServer) -> None:
    url = jar_server.url("/status/403") + "?X-Amz-Signature=SECRET-TOKEN"
    with pytest.raises(ArtifactRefused) as caught:
        _cache(tmp_path, jar_server).path_for(_spec("https", url, JAR_SHA))
    assert "SECRET-TOKEN" not in str(caught.value)
    assert "/status/403?…" in str(caught.value)


def test_an_unpinned_https_jar_is_refused_unless_allowed(tmp_path: Path, jar_server: JarServer) -> None:
    jar_server.files["app.jar"] = JAR
    cache = ArtifactCache(tmp_path / "jars", download=ArtifactDownload(ca_file=jar_server.ca_file))
    with pytest.raises(ArtifactRefused, match="not pinned"):
        cache.path_for(_spec("https", jar_server.url("/jars/app.jar"), None))
    assert jar_server.hits["/jars/app.jar"] == 0


def test_a_file_jar_over_the_limit_or_missing_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.jar"
    big.write_bytes(b"x" * 2000)
    cache = ArtifactCache(tmp_path / "jars", download=ArtifactDownload(max_bytes=1000))
    with pytest.raises(ArtifactRefused, match="larger than 1000 bytes"):
        cache.path_for(_spec("file", str(big), None))
    with pytest.raises(ArtifactRefused, match="cannot be read"):
        cache.path_for(_spec("file", str(tmp_path / "nope.jar"), None))


# --- unpinned jars: hashed by their bytes at every sync -------------------------------------------


def _desired(tmp_path: Path, jar: str, roots: list[Path] | None = None) -> DesiredJob:
    repo = write_repo(tmp_path / "repo", {"jobs/a.yaml": spec_yaml("a", jar=jar)})
    state = SpecLoader("jobs", artifact_roots=roots or []).load(DirectoryTree(repo))
    job = state.jobs["a"]
    assert isinstance(job, DesiredJob), state.problems
    return job


def test_new_bytes_behind_the_same_url_change_the_spec_hash(tmp_path: Path, jar_server: JarServer) -> None:
    jar_server.files["app.jar"] = JAR
    url = jar_server.url("/jars/app.jar")
    repo = write_repo(tmp_path / "repo", {"jobs/a.yaml": spec_yaml("a", jar=url)})
    state = SpecLoader("jobs").load(DirectoryTree(repo))
    cache = _cache(tmp_path, jar_server)
    first = cache.pin_unpinned(state).jobs["a"]
    assert isinstance(first, DesiredJob)
    assert first.jar_digest == jar_digest_of(JAR_SHA)
    assert first.jar.sha256 == JAR_SHA
    jar_server.files["app.jar"] = JAR + b"v2"
    second = cache.pin_unpinned(state).jobs["a"]
    assert isinstance(second, DesiredJob)
    assert second.spec_hash != first.spec_hash
    assert second.jar_digest == jar_digest_of(hashlib.sha256(JAR + b"v2").hexdigest())
    # the deploy uses exactly the bytes that were hashed
    assert cache.path_for(RunSpec.of(second, None)).read_bytes() == JAR + b"v2"


def test_an_unpinned_file_jar_is_hashed_by_its_bytes(tmp_path: Path) -> None:
    roots = tmp_path / "jars-here"
    roots.mkdir()
    (roots / "app.jar").write_bytes(b"one")
    job = _desired(tmp_path, f"file://{roots}/app.jar", [roots])
    assert job.jar_digest.startswith("url:")  # validate/plan never read host files
    state = SpecLoader("jobs", artifact_roots=[roots]).load(DirectoryTree(tmp_path / "repo"))
    cache = ArtifactCache(tmp_path / "cache")
    pinned = cache.pin_unpinned(state).jobs["a"]
    assert isinstance(pinned, DesiredJob)
    assert pinned.jar_digest == jar_digest_of(hashlib.sha256(b"one").hexdigest())


def test_an_unreadable_unpinned_jar_makes_the_job_invalid_this_cycle(
    tmp_path: Path, jar_server: JarServer
) -> None:
    url = jar_server.url("/status/503")
    repo = write_repo(tmp_path / "repo", {"jobs/a.yaml": spec_yaml("a", jar=url)})
    state = SpecLoader("jobs").load(DirectoryTree(repo))
    pinned = _cache(tmp_path, jar_server).pin_unpinned(state)
    assert "a" in pinned.invalid_jobs()
    assert "jobs/a.yaml" in pinned.invalid_files
    assert any("job left as is" in p.message and p.is_error for p in pinned.problems)
    assert not pinned.may_prune("a", "jobs/a.yaml")


def test_unpinned_https_is_not_fetched_when_not_allowed(tmp_path: Path, jar_server: JarServer) -> None:
    jar_server.files["app.jar"] = JAR
    repo = write_repo(tmp_path / "repo", {"jobs/a.yaml": spec_yaml("a", jar=jar_server.url("/jars/app.jar"))})
    state = SpecLoader("jobs").load(DirectoryTree(repo))
    cache = ArtifactCache(tmp_path / "jars", download=ArtifactDownload(ca_file=jar_server.ca_file))
    assert cache.pin_unpinned(state) is state
    assert jar_server.hits["/jars/app.jar"] == 0
