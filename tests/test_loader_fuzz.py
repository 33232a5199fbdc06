"""Property: every stack file, valid or broken, ends in a plan (valid) or in exit 2 with
messages that name the key or file, never in a traceback.

Hypothesis generates stack files from the shipped staging and prod files and traffic-policy
folders from traffic/shop, then breaks them the ways people do: keys deleted, renamed to
snake_case or garbage, values of the wrong type, huge or full of markup (``[a-z]``, ``[/]``),
lists with an entry twice, keys given twice, bytes that are not UTF-8, YAML cut short, traffic
folders outside the repository. The loader runs in-process, exactly as ``meshless plan`` runs it
before registering anything (read the file, validate config and traffic policies), and its
messages are printed through the CLI's own printer. The figures land in
out/fuzz-loader.json and in the final test's assertion message.
"""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from components.traffic import FLOWS_FILES
from infra import cli
from infra.config import ConfigError
from infra.plan import PlanInputError, read_stack_file
from infra.program import load

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = 500
FIGURES: Counter[str] = Counter()
# What a user never wrote and a message must never show: pydantic's union members and
# validator steps, our model class names, Python's reprs of internals.
INTERNAL = re.compile(
    r"literal\[|function-(after|before|wrap|plain)|tagged-union|json-or-python|"
    r"\b\w+Config\b(?!\.)|CiliumSettings|NodePool\b|EndpointAccess|HubbleSettings|ImageOverride|"
    r"Traceback|<class |object at 0x"
)
MAX_LINE = 1200


def _config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())


BASES = {"staging": _config("staging"), "prod": _config("prod")}
TRAFFIC = {
    p.name: yaml.safe_load(p.read_text())
    for p in sorted((REPO / "traffic/shop").glob("*.yaml"))
    if p.name not in FLOWS_FILES  # expected flows, not policies (their own format)
}


def _paths(node: Any, here: tuple = ()) -> Iterator[tuple]:
    yield here
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*here, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*here, index))


def _parent(doc: Any, path: tuple) -> tuple[Any, Any] | None:
    node = doc
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return (node, path[-1]) if path else None


SPECIAL_TEXT = st.sampled_from(
    [
        "[a-z]",
        "[/]",
        "[bold red]x[/]",
        "^[a-z][-a-z0-9]*$",
        "x" * 5000,
        "",
        " ",
        "0.0.0.0/1",
        "::/0",
        "10.0.0.0/8",
        "m6i.large",
        "m7g.xlarge",
        "e2-standard-4",
        "n2.large",
        "traffic/shop",
        "../..",
        "/etc",
        "traffic/missing",
        "a\x00b",
        "é" * 40,
        "null",
        "1.16.19",
        "prod",
        "staging",
        "us-west-2a",
        "true",
        "{{ .Values }}",
    ]
)
SCALARS = st.one_of(
    SPECIAL_TEXT,
    st.text(max_size=24),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=6,
)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


@st.composite
def mutated(draw: Any, base: Any) -> Any:
    """``base`` with 0-4 structural changes."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        found = _parent(doc, path)
        if found is None:
            continue
        node, key = found
        action = draw(st.sampled_from(["set", "delete", "rename", "repeat", "set", "set"]))
        try:
            if action == "set":
                node[key] = draw(VALUES)
            elif action == "delete":
                del node[key]
            elif action == "rename" and isinstance(node, dict):
                new = draw(st.one_of(st.just(_snake(str(key))), st.text(max_size=10), SPECIAL_TEXT))
                node[new] = node.pop(key)
            elif action == "repeat" and isinstance(node, list):
                node.append(copy.deepcopy(node[key]))
        except (KeyError, IndexError, TypeError):
            continue
    return doc


def _duplicate_a_key(text: str, line: int) -> str:
    lines = text.splitlines()
    keyed = [i for i, item in enumerate(lines) if re.match(r"^\s*[\w:-]+:", item)]
    if not keyed:
        return text
    i = keyed[line % len(keyed)]
    lines.insert(i + 1, lines[i].split(":", 1)[0] + ": duplicate")
    return "\n".join(lines) + "\n"


@st.composite
def stack_file(draw: Any) -> tuple[bytes, dict[str, bytes]]:
    """(stack file bytes, traffic files by name)."""
    stack = draw(st.sampled_from(sorted(BASES)))
    doc = {"config": draw(mutated(BASES[stack]["config"]))}
    traffic = {}
    if draw(st.booleans()):
        for name, content in TRAFFIC.items():
            traffic[name] = yaml.safe_dump(draw(mutated(content)), allow_unicode=True).encode()
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    raw_text = draw(
        st.sampled_from(["as-is", "as-is", "as-is", "dup-key", "cut", "garbage", "latin1"])
    )
    if raw_text == "dup-key":
        text = _duplicate_a_key(text, draw(st.integers(min_value=0, max_value=500)))
    elif raw_text == "cut":
        text = text[: draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))]
    elif raw_text == "garbage":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = (
            text[:at]
            + draw(st.sampled_from(["\t- [", ": : :", "{{", "&a *b", "? [1]"]))
            + text[at:]
        )
    data = text.encode("utf-8")
    if raw_text == "latin1":
        data = data.replace(b"cloud", b"cl\xf6ud", 1) + b"\xff"
    return data, traffic


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    (REPO / "out").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".fuzz-", dir=REPO / "out"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _printed(problems: list[str]) -> str:
    """The problems as `meshless plan` prints them (its own printer, into a buffer)."""
    buffer = io.StringIO()
    original = cli.err
    cli.err = Console(file=buffer, width=200, color_system=None)
    try:
        cli._fail(problems)
    finally:
        cli.err = original
    return buffer.getvalue()


def _outcome(folder: Path, data: bytes, traffic: dict[str, bytes]) -> tuple[int, list[str]]:
    stack_path = folder / "Pulumi.fuzz.yaml"
    stack_path.write_bytes(data)
    policies = folder / "traffic"
    shutil.rmtree(policies, ignore_errors=True)
    policies.mkdir()
    for name, content in traffic.items():
        (policies / name).write_bytes(content)
    text = data.decode("utf-8", "replace")
    if traffic:
        relative = policies.relative_to(REPO).as_posix()
        text = text.replace("traffic/shop", relative)
        stack_path.write_bytes(text.encode("utf-8") if b"\xff" not in data else data)
    try:
        load(read_stack_file(stack_path))
    except ConfigError as exc:
        return 2, exc.problems
    except PlanInputError as exc:
        return 2, [str(exc)]
    return 0, []


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=stack_file())
def test_every_stack_file_plans_or_exits_2_with_the_key(scratch: Path, case) -> None:
    data, traffic = case
    FIGURES["examples"] += 1
    try:
        code, problems = _outcome(scratch, data, traffic)
    except Exception:
        FIGURES["tracebacks"] += 1
        raise
    FIGURES[f"exit {code}"] += 1
    if code == 0:
        return
    assert problems, "exit 2 without a message"
    printed = _printed(problems)
    for problem in problems:
        first = problem.splitlines()[0] if problem else ""
        # Names the key (meshless:...), the stack file, or a traffic file and line.
        assert first.startswith(("meshless:", str(scratch), "out/", "--stack")), problem[:300]
        assert not INTERNAL.search(problem), problem[:300]
        assert all(len(line) <= MAX_LINE for line in problem.splitlines()), problem[:300]
        # Printed as text: markup-looking parts of the message survive the printer.
        for token in re.findall(r"\[[a-z/][^\]\s]{0,10}\]", problem[:300]):
            assert token in printed, (token, printed[:500])


def test_fuzz_figures() -> None:
    """Runs after the property: at least EXAMPLES examples, zero tracebacks."""
    figures = {
        "examples": FIGURES["examples"],
        "exit 0": FIGURES["exit 0"],
        "exit 2": FIGURES["exit 2"],
        "tracebacks": FIGURES["tracebacks"],
    }
    (REPO / "out").mkdir(exist_ok=True)
    (REPO / "out" / "fuzz-loader.json").write_text(json.dumps(figures, indent=2) + "\n")
    assert figures["examples"] >= EXAMPLES and figures["tracebacks"] == 0, figures
    assert figures["exit 0"] > 0 and figures["exit 2"] > 0, figures
