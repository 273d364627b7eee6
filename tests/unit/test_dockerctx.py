"""The .dockerignore matcher of tests/dockerctx.py follows Docker's documented semantics, and no
setting defaults to a path inside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import REPO_ROOT, Settings
from tests.dockerctx import Matcher, context_files, interpolate, read_dockerignore, stages


def excluded(patterns: str, path: str) -> bool:
    return Matcher(read_dockerignore(patterns)).excluded(path)


@pytest.mark.parametrize(("patterns", "path", "expected"), [
    # examples of Docker's .dockerignore reference
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("temp?", "tempa", True),
    ("temp?", "sub/tempa", False),            # anchored at the context root, unlike .gitignore
    ("**/*.go", "a/b/c.go", True),
    ("**/*.go", "c.go", True),
    ("*.md\n!README*.md", "README-secret.md", False),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
    ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
    # a directory pattern covers what is below it; the last matching pattern wins
    ("*\n!techne", "techne/cli.py", False),
    ("*\n!techne", "tests/test_x.py", True),
    ("*\n!deploy/agreements", "deploy/agreements/a.yaml", False),
    ("*\n!deploy/agreements", "deploy/.env", True),
    ("*\n!techne\n**/__pycache__", "techne/__pycache__/cli.cpython-311.pyc", True),
    ("/leading/slash", "leading/slash", True),
    ("# comment\n\n  spaced  ", "spaced", True),
    ("# comment", "# comment", False),
])
def test_docker_pattern_semantics(patterns: str, path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected


def test_walk_enters_an_excluded_directory_only_for_an_exception(tmp_path: Path) -> None:
    for rel in ("keep/a.py", "keep/sub/b.py", "drop/c.py", "deploy/.env", "deploy/venues.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    matcher = Matcher(read_dockerignore("*\n!keep\n!deploy/venues.yaml\n**/.env"))
    assert context_files(tmp_path, matcher) == ["deploy/venues.yaml", "keep/a.py", "keep/sub/b.py"]


def test_compose_interpolation() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d}|${EMPTY:-d}|${EMPTY-d}|${UNSET:-{}}|$$x|$SET", env) == "v|d||{}|$x|v"


def test_dockerfile_stages_are_read() -> None:
    build, runtime = stages((REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert build.name == "build" and runtime.name is None
    assert any("--require-hashes" in cmd and "--no-deps" in cmd for _, cmd in build.runs)
    assert any("--no-build-isolation" in cmd for _, cmd in build.runs)
    assert runtime.workdir == "/app" and runtime.env["TECHNE_VENUES_FILE"] == "/app/deploy/venues.yaml"


def test_no_setting_defaults_into_the_checkout() -> None:
    settings = Settings()
    for name in ("venues_file", "agreements_dir", "import_profiles_dir", "data_dir"):
        path: Path = getattr(settings, name)
        assert not path.is_absolute(), f"{name} defaults to {path}: an installed package has no checkout"
    image = Settings(import_profiles_dir=Path("/app/deploy/import-profiles"))
    assert image.import_profiles_dir == Path("/app/deploy/import-profiles")
