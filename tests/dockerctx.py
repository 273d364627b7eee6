"""What `docker build` would see, without a Docker engine: the build context and the final stage.

- :func:`read_dockerignore` reads ``.dockerignore`` as Docker's ``dockerignore.ReadAll`` does
  (``#`` comments only at the start of a line, whitespace trimmed, paths cleaned, a leading
  ``/`` dropped, ``!`` exceptions).
- :class:`Matcher` is moby's ``patternmatcher``: patterns in Go ``filepath.Match`` syntax plus
  ``**`` (any number of directories, even none), anchored at the context root; a file is
  excluded when the *last* pattern matching it, or one of its parent directories, is not an
  exception (``MatchesOrParentMatches``).
- :func:`build_context` copies the files of a checkout that survive the matcher into a
  directory, walking like the classic builder (an excluded directory is not entered unless an
  exception pattern starts with its path).
- :func:`final_stage` reads the Dockerfile's last stage: its ``COPY`` instructions from the
  context (not ``--from``), ``ENV``, ``WORKDIR``, so a test can lay those files out under a
  fake image root and run the installed package with the image's environment.

Only the subset of the Dockerfile syntax our Dockerfile uses is understood (instructions on
one line or continued with ``\\``; ``ENV key=value ...``); anything else raises ``ValueError``
rather than being silently misread.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

_ESCAPED = set(".+()|{}$^")  # regexp specials without meaning in filepath.Match


def read_dockerignore(text: str) -> list[str]:
    """Patterns of a ``.dockerignore`` file, normalised as ``dockerignore.ReadAll`` does."""
    patterns = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath("/" + line.lstrip("/") if line.startswith("/") else line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


@dataclass
class Pattern:
    cleaned: str
    exclusion: bool
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = re.compile(_translate(self.cleaned))

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _translate(pattern: str) -> str:
    """moby ``Pattern.compile``: filepath.Match syntax plus ``**`` -> an anchored regex."""
    out = "^"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out += ".*" if i >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in _ESCAPED:
            out += "\\" + ch
        elif ch == "\\":
            if i < n:
                out += re.escape(pattern[i])
                i += 1
            else:
                out += "\\\\"
        elif ch == "[":
            end = pattern.find("]", i)
            if end < 0:
                raise ValueError(f"bad pattern {pattern!r}: unclosed [")
            body = pattern[i:end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end + 1
        else:
            out += re.escape(ch)
    return out + "$"


class Matcher:
    """moby ``PatternMatcher`` for slash-separated paths relative to the context root."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = posixpath.normpath(text)
            exclusion = text.startswith("!")
            if exclusion:
                text = text[1:]
                if not text:
                    raise ValueError("illegal exclusion pattern: '!'")
            self.patterns.append(Pattern(text, exclusion))

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """``MatchesOrParentMatches``: is ``path`` (or a parent directory) left out of the context?"""
        path = posixpath.normpath(path)
        if path == ".":
            return False
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # only a pattern that can change the state is evaluated
            hit = pattern.match(path)
            if not hit:
                hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_reinclude_below(self, directory: str) -> bool:
        """Classic builder: enter an excluded directory only if an exception starts with its path."""
        prefix = directory.rstrip("/") + "/"
        return any(p.exclusion and (p.cleaned + "/").startswith(prefix) for p in self.patterns)


def context_files(root: Path, matcher: Matcher) -> list[str]:
    """Relative paths (slash-separated) of the files that ``docker build root`` sends."""
    kept: list[str] = []
    for current, dirs, files in os.walk(root):
        rel_dir = Path(current).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for name in list(dirs):
            rel = rel_dir + name
            if matcher.excluded(rel) and not matcher.may_reinclude_below(rel):
                dirs.remove(name)
        for name in files:
            rel = rel_dir + name
            if not matcher.excluded(rel):
                kept.append(rel)
    return sorted(kept)


def build_context(root: Path, dest: Path) -> list[str]:
    """Copy into ``dest`` what ``root/.dockerignore`` lets through; returns the relative paths."""
    ignore = root / ".dockerignore"
    matcher = Matcher(read_dockerignore(ignore.read_text(encoding="utf-8")) if ignore.exists() else [])
    files = context_files(root, matcher)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return files


@dataclass
class Stage:
    """One stage of a Dockerfile, as far as the tests need it."""

    name: str | None
    copies: list[tuple[str | None, list[str], str]] = field(default_factory=list)  # (from, sources, dest)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    runs: list[tuple[str, str]] = field(default_factory=list)  # (workdir, command)
    cmd: str = ""


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(dockerfile: str) -> list[Stage]:
    """The stages of a Dockerfile: COPY, ENV, WORKDIR, RUN and CMD of each ``FROM``."""
    found: list[Stage] = []
    for keyword, rest in _instructions(dockerfile):
        if keyword == "FROM":
            words = rest.split()
            found.append(Stage(words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
            continue
        if not found:
            continue  # ARG before the first FROM
        stage = found[-1]
        if keyword == "COPY":
            words = shlex.split(rest)
            origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            args = [w for w in words if not w.startswith("--")]
            dest = args[-1]
            absolute = dest if dest.startswith("/") else posixpath.join(stage.workdir, dest)
            stage.copies.append((origin, args[:-1], absolute + ("/" if dest.endswith("/") else "")))
        elif keyword == "ENV":
            for word in shlex.split(rest):
                key, sep, value = word.partition("=")
                if not sep:
                    raise ValueError(f"ENV without '=' is not understood: {rest!r}")
                stage.env[key] = value
        elif keyword == "WORKDIR":
            stage.workdir = posixpath.join(stage.workdir, rest)
        elif keyword == "RUN":
            words = rest.split(" ")
            while words and words[0].startswith("--"):  # RUN --mount=... flags
                words.pop(0)
            stage.runs.append((stage.workdir, " ".join(words).strip()))
        elif keyword == "CMD":
            stage.cmd = rest
    return found


def in_root(root: Path, path: str) -> Path:
    """Where an absolute image path lands under the fake image ``root``."""
    return root / path.lstrip("/")


def copy_from_context(stage: Stage, context: Path, root: Path) -> None:
    """Run the stage's ``COPY`` instructions that read the build context (not ``--from``).

    A source missing from the context (left out by ``.dockerignore``) raises FileNotFoundError,
    as ``docker build`` fails."""
    for origin, sources, dest in stage.copies:
        if origin is not None:
            continue
        for source in sources:
            src = context / source
            if not src.exists():
                raise FileNotFoundError(f"COPY {source}: not in the build context (.dockerignore?)")
            target = in_root(root, dest)
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                if dest.endswith("/"):
                    target = target / src.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)


def image_env(stage: Stage, root: Path) -> dict[str, str]:
    """The stage's ENV with absolute paths moved under ``root``; in ``:``-separated lists (PATH)
    only the entries that exist there (the others stand for the base image's, e.g. /usr/bin)."""
    env = {}
    for key, value in stage.env.items():
        if ":" in value:
            parts = value.split(":")
            env[key] = ":".join(str(in_root(root, p)) if p.startswith("/") and in_root(root, p).exists() else p
                                for p in parts)
        else:
            env[key] = str(in_root(root, value)) if value.startswith("/") else value
    return env


def run_commands(command: str, root: Path) -> list[list[str]]:
    """A ``RUN`` of ``cmd && cmd ...`` as argument lists, absolute paths moved under ``root``
    (any other shell syntax is refused rather than misread)."""
    if re.search(r"[|;<>`]|\$\(", command):
        raise ValueError(f"RUN with shell syntax beyond && is not understood: {command!r}")
    return [[str(in_root(root, w)) if w.startswith("/") else w for w in shlex.split(part)]
            for part in command.split("&&")]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}``
    (a default may hold braces, e.g. ``${X:-{}}``)."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= len(value):
                    raise ValueError(f"unclosed ${{ in {value!r}")
                depth += {"{": 1, "}": -1}.get(value[j], 0)
                j += 1
            body = value[i + 2: j - 1]
            name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", body)
            if name is None:
                raise ValueError(f"bad variable in {value!r}")
            rest = body[name.end():]
            current = env.get(name.group())
            if rest.startswith(":-"):
                out.append(current if current else interpolate(rest[2:], env))
            elif rest.startswith("-"):
                out.append(current if current is not None else interpolate(rest[1:], env))
            elif not rest:
                out.append(current or "")
            else:
                raise ValueError(f"interpolation {body!r} is not understood")
            i = j
        elif value[i] == "$" and (m := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", value[i:])):
            out.append(env.get(m.group(1), ""))
            i += m.end()
        else:
            out.append(value[i])
            i += 1
    return "".join(out)
