"""The transcripts of the README and of the docs site, executed: every ```console block that calls the server runs.

A reader copies these commands; a transcript that no longer matches the behaviour is a bug in the
docs. :data:`DOCUMENTS` are the README and every page under ``docs/``; each is a story of its own:
its blocks run in the file's order against one real server started for that file (gunicorn with
config/gunicorn.py, 2 workers, SQLite) on a fresh store where ``coe-template db upgrade`` and
``coe-template train --if-missing`` made version 1, with the admin and read keys the commands name
(``$COE_ADMIN_KEY``, ``$COE_READ_KEY``). A page may rely on its own earlier blocks (a version trained
in one section, promoted in the next; a metrics scrape counting the requests before it), never on
another file's. Each command's output is compared with the lines the file shows under it, exactly,
except for the run-dependent values in :data:`MASKS`.

The rules an author follows (also in docs/tests.md, "The README and the docs"):

- A ``console`` block runs when one of its ``$`` commands runs ``curl`` against ``localhost:8000``
  (the test substitutes its own port, and writes ``localhost:8000`` back in the output). Every
  command of such a block runs, in order, in bash, in one scratch directory shared by all blocks,
  with ``jq`` being tests/readme_jq.py. A block that mentions ``localhost:8000`` but cannot run
  says why in ``<!-- readme-test: not executed: REASON -->`` on the line before its fence; one that
  calls the server in a fence other than ``console`` fails the test.
- The lines under a command, up to the next ``$``, are its output (trailing blank lines aside).
- ``$ cat FILE`` is not run: it creates FILE with the output shown (the transcript says what it holds).
  ``$ cat > FILE <<'EOF'``, then the file's lines, then ``EOF``, is one command a reader can copy: it runs.
- ``<!-- readme-test: env NAME=VALUE -->`` anywhere in a file: its server runs with that setting
  (the file's text says so where it starts the server).
- ``$ sleep N`` is not run: the test waits until every worker serves each model's ``production``.
- A ``curl`` command that changes nothing (no ``-X``, ``-d``, ``-F``, ``-T``, alone or in a group
  like ``-sX``, no ``--data…``, ``--form…``, ``--upload…``, ``--request``, ``--json``) is repeated until its output matches, for up to
  :data:`SETTLE_SECONDS`: it shows a state the server reaches (a job done, a version ready).
  Any other command runs once.
- A masked value the README shows again later (a job id, its token, a run id, a digest) must come
  back as the same value in this run, and a later command that quotes it gets this run's value.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from coe_template.cli import main as cli
from tests.conftest import ADMIN_KEY, PROJECT_ROOT, READ_KEY
from tests.servers import gunicorn

README = PROJECT_ROOT / "README.md"
#: Every file whose transcripts run: the README, then the docs site's pages (each on a server of its own).
DOCUMENTS = [README, *sorted((PROJECT_ROOT / "docs").glob("**/*.md"))]
WORKERS = 2
#: How long a command that changes nothing may take to show the state the README shows.
SETTLE_SECONDS = 60.0
#: At least this many blocks and commands run: a parser that stops finding them fails here.
MIN_BLOCKS = 16
MIN_COMMANDS = 60
#: A setting of the server a page's transcripts ran against, when not the default.
_SERVER_ENV = re.compile(r"<!-- readme-test: env (COE_[A-Z_]+)=(\S+) -->")
#: A here-document's first line: ``cat > FILE <<'EOF'`` (any quoted or bare word as the delimiter).
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1\s*$")


@dataclass(frozen=True)
class Mask:
    """A run-dependent value: matched by ``pattern`` in both texts; ``bound`` ones must stay consistent."""

    name: str
    pattern: str
    bound: bool


#: Everything a run may change; the rest of every output is compared as it is.
MASKS = (
    Mask("timestamp", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)", bound=False),
    Mask(
        "http-date",
        r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT",
        bound=False,
    ),
    Mask("run-id", r"\d{8}T\d{12}Z-[0-9a-f]{6}", bound=True),
    Mask("job-id", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", bound=True),
    Mask("job-token", r"(?<=\"job_token\":\")[A-Za-z0-9_-]{43}(?=\")", bound=True),
    Mask("digest", r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", bound=True),
    Mask("request-id", r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", bound=False),
    Mask("pid", r"(?<=pid=\")\d+(?=\")", bound=False),
)
#: A float printed to full precision (a probability, a weight): its last digits depend on the machine's
#: floating-point code (BLAS, SIMD width), so it is compared to the README's within ``FLOAT_TOLERANCE``.
_LONG_FLOAT = re.compile(r"-?\d+\.\d{10,}(?:e[+-]?\d+)?")
FLOAT_TOLERANCE = 1e-9
_MASKED = re.compile("|".join(f"(?P<m{index}>{mask.pattern})" for index, mask in enumerate(MASKS)))
_NOT_EXECUTED = re.compile(r"<!--\s*readme-test:\s*not executed:\s*(.+?)\s*-->")
#: curl's options that send a body or name a method (short ones alone or in a group such as ``-sX``).
_CHANGING_OPTIONS = ("--data", "--form", "--upload", "--request", "--json")
_CHANGING_FLAGS = frozenset("XdFT")


@dataclass
class Command:
    line: int
    text: str
    expected: str


@dataclass
class Block:
    document: str
    line: int
    section: str
    language: str
    commands: list[Command] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    not_executed: str | None = None

    @property
    def calls_server(self) -> bool:
        return any("curl" in command.text and "localhost:8000" in command.text for command in self.commands)

    @property
    def mentions_server(self) -> bool:
        return any("localhost:8000" in line for line in self.body)

    @property
    def runs(self) -> bool:
        return self.calls_server and self.not_executed is None

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line} {self.section}"


def fenced_blocks(text: str, document: str = "README.md") -> list[Block]:
    """Every fenced block of ``text``; a ``console`` one's ``$`` commands (continuations joined) and outputs."""
    blocks: list[Block] = []
    lines = text.splitlines()
    section, index = "", 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        if not line.startswith("```"):
            index += 1
            continue
        marker = _NOT_EXECUTED.search(lines[index - 1]) if index else None
        block = Block(
            document, index + 1, section, line[3:].strip(), not_executed=marker.group(1) if marker else None
        )
        index += 1
        output: list[str] = []
        while not lines[index].startswith("```"):
            current = lines[index]
            block.body.append(current)
            if block.language == "console" and current.startswith("$ "):
                if block.commands:
                    block.commands[-1].expected = "\n".join(output).rstrip("\n")
                output = []
                start, parts = index + 1, [current[2:]]
                while parts[-1].endswith("\\"):
                    index += 1
                    parts.append(lines[index])
                    block.body.append(lines[index])
                heredoc = _HEREDOC.search(parts[-1])
                while heredoc and parts[-1] != heredoc.group(2):
                    index += 1
                    parts.append(lines[index])
                    block.body.append(lines[index])
                block.commands.append(Command(start, "\n".join(parts), ""))
            else:
                output.append(current)
            index += 1
        if block.commands:
            block.commands[-1].expected = "\n".join(output).rstrip("\n")
        blocks.append(block)
        index += 1
    return blocks


def _name(path: Path) -> str:
    return path.relative_to(PROJECT_ROOT).as_posix()


BLOCKS = [
    block for path in DOCUMENTS for block in fenced_blocks(path.read_text(encoding="utf-8"), _name(path))
]
RUN = [block for block in BLOCKS if block.runs]


def masked(text: str) -> str:
    """``text`` with every run-dependent value replaced by its mask's name: what a diff shows."""
    return _MASKED.sub(lambda match: f"<{MASKS[_which(match)].name}>", text)


def same_floats(expected: str, actual: str) -> str:
    """``actual`` with each long float replaced by the README's, where they agree within ``FLOAT_TOLERANCE``.

    Only when both print the same number of them, so any other difference still shows in the diff.
    """
    shown, given = _LONG_FLOAT.findall(expected), list(_LONG_FLOAT.finditer(actual))
    if len(shown) != len(given):
        return actual
    parts, position = [], 0
    for readme, match in zip(shown, given, strict=True):
        close = math.isclose(float(readme), float(match.group()), rel_tol=FLOAT_TOLERANCE, abs_tol=1e-12)
        parts += [actual[position : match.start()], readme if close else match.group()]
        position = match.end()
    return "".join(parts) + actual[position:]


def _which(match: re.Match[str]) -> int:
    return next(int(name[1:]) for name, value in match.groupdict().items() if value is not None)


@dataclass
class Bindings:
    """The README's values of bound masks, and the values this run gave in their place."""

    values: dict[str, str] = field(default_factory=dict)

    def pattern(self, expected: str) -> re.Pattern[str]:
        """A regex matching an output equal to ``expected`` but for masked values (bound ones as bound)."""
        parts, position, groups = [], 0, 0
        for match in _MASKED.finditer(expected):
            parts.append(re.escape(expected[position : match.start()]))
            mask = MASKS[_which(match)]
            if mask.bound and match.group() in self.values:
                parts.append(re.escape(self.values[match.group()]))
            else:
                groups += 1
                parts.append(f"(?P<g{groups}>{mask.pattern})")
            position = match.end()
        parts.append(re.escape(expected[position:]))
        return re.compile("".join(parts))

    def match(self, expected: str, actual: str) -> bool:
        """Whether ``actual`` matches ``expected``; if it does, bind the README's new bound values."""
        found = self.pattern(expected).fullmatch(actual)
        if found is None:
            return False
        shown = [
            match
            for match in _MASKED.finditer(expected)
            if not (MASKS[_which(match)].bound and match.group() in self.values)
        ]
        new: dict[str, str] = {}
        for number, match in enumerate(shown, start=1):
            if MASKS[_which(match)].bound:
                new.setdefault(match.group(), found.group(f"g{number}"))
                if new[match.group()] != found.group(f"g{number}"):
                    return False  # one value in the README, two in this run
        bound = {**self.values, **new}
        if len(set(bound.values())) < len(bound):
            return False  # two values in the README, one in this run
        self.values = bound
        return True

    def substitute(self, command: str) -> str:
        for readme_value, value in self.values.items():
            command = command.replace(readme_value, value)
        return command


def _changes(word: str) -> bool:
    """Whether a word of a command is a curl option that may change the server's state."""
    if word.startswith("--"):
        return word.startswith(_CHANGING_OPTIONS)
    return word.startswith("-") and bool(_CHANGING_FLAGS & set(word[1:]))


class Transcript:
    """One file's executed blocks, run once each, in the file's order, against one server."""

    def __init__(self, document: str, base: str, workdir: Path, shims: Path) -> None:
        self.document = document
        self.base = base
        self.port = base.rsplit(":", 1)[1]
        self.workdir = workdir
        self.bindings = Bindings()
        self.failures: dict[str, list[str]] = {}
        self.commands_run = 0
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join(
                [str(shims), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
            ),
            "HOME": str(workdir),  # no ~/.curlrc
            "LC_ALL": "C.UTF-8",
            "NO_PROXY": "*",  # the server is local, whatever the environment's proxy
            "no_proxy": "*",
            "COE_ADMIN_KEY": ADMIN_KEY,
            "COE_READ_KEY": READ_KEY,
        }

    def failures_of(self, block: Block) -> list[str]:
        """Run every executed block of the file up to ``block`` (once), then say how ``block`` differed from it."""
        for earlier in (run for run in RUN if run.document == self.document):
            if earlier.id not in self.failures:
                self.failures[earlier.id] = [
                    problem for command in earlier.commands if (problem := self.run(command)) is not None
                ]
            if earlier is block:
                break
        return self.failures[block.id]

    def run(self, command: Command) -> str | None:
        """Run one command; None if its output is the file's, else what differed."""
        self.commands_run += 1
        words = shlex.split(command.text.replace("\\\n", " "), comments=True)
        if words[:1] == ["cat"] and len(words) == 2 and "\n" not in command.text:
            (self.workdir / words[1]).write_text(command.expected + "\n", encoding="utf-8")
            return None
        if words[:1] == ["sleep"]:
            self.wait_for_production()
            return None
        repeatable = words[:1] == ["curl"] and not any(_changes(word) for word in words)
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            actual = same_floats(command.expected, self.execute(command.text))
            if self.bindings.match(command.expected, actual):
                return None
            if not repeatable or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        diff = "\n".join(
            difflib.unified_diff(
                masked(command.expected).splitlines(),
                masked(actual).splitlines(),
                self.document,
                "server",
                lineterm="",
            )
        )
        return (
            f"{self.document}:{command.line}: $ {command.text}\n"
            + (diff or "(equal but for masked values: a value shown twice came back different)")
            + f"\n--- the server's whole output, to paste:\n{actual}"
        )

    def execute(self, text: str) -> str:
        text = self.bindings.substitute(text).replace("localhost:8000", f"localhost:{self.port}")
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", text],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
        output = done.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
        return output.replace(f"localhost:{self.port}", "localhost:8000").rstrip("\n")

    def wait_for_production(self) -> None:
        """What the README's ``sleep`` waits for: every worker serving each model's ``production``."""
        deadline = time.monotonic() + SETTLE_SECONDS
        served: dict[str, list[int]] = {}
        while time.monotonic() < deadline:
            served = {}
            for model, version in re.findall(
                r'^coe_model_version_served\{model="([^"]+)",pid="\d+"\} (\S+)$',
                httpx.get(f"{self.base}/metrics").text,
                re.MULTILINE,
            ):
                served.setdefault(model, []).append(int(float(version)))
            production = {
                model: httpx.get(f"{self.base}/models/{model}/aliases/production").json()["data"]["version"]
                for model in served
            }
            if served and all(
                versions == [production[model]] * WORKERS for model, versions in served.items()
            ):
                return
            time.sleep(0.1)
        raise AssertionError(f"workers still serve {served} after {SETTLE_SECONDS} s")


def _port_like_8000() -> int:
    """A free port of four digits: the README's ``content-length`` of a body quoting its URL holds."""
    for port in random.sample(range(8001, 10000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 8001 and 9999")


def _listening(log: Path) -> Callable[[str], bool]:
    """Ready once gunicorn says it listens: no HTTP request, so the README's request counts hold."""
    return lambda base: f"Listening at: {base} (" in log.read_text()


@contextmanager
def _server(document: str, where: Path) -> Iterator[Transcript]:
    """A server started as ``make serve`` starts it, on a fresh store, and a scratch directory for the commands."""
    store = where / "model-store"
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": "",
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_READ_KEYS": READ_KEY,
        # The settings a page says its server was started with: <!-- readme-test: env NAME=VALUE -->.
        **dict(_SERVER_ENV.findall((PROJECT_ROOT / document).read_text(encoding="utf-8"))),
    }
    for args in (["db", "upgrade"], ["train", "--if-missing"]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 0, result.output
    shims = where / "bin"
    shims.mkdir()
    jq = shims / "jq"
    jq.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{PROJECT_ROOT / "tests" / "readme_jq.py"}" "$@"\n')
    jq.chmod(0o755)
    workdir = where / "work"
    workdir.mkdir()
    log = where / "server.log"
    with gunicorn(env, log, workers=WORKERS, ready=_listening(log), port=_port_like_8000()) as (
        base,
        _process,
    ):
        yield Transcript(document, base, workdir, shims)


class Servers:
    """One server per file, started when the file's first block runs; the previous file's is stopped then."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.stack = ExitStack()
        self.current: Transcript | None = None

    def transcript(self, document: str) -> Transcript:
        if self.current is None or self.current.document != document:
            self.stack.close()
            where = self.tmp_path_factory.mktemp(re.sub(r"\W+", "-", document))
            self.current = self.stack.enter_context(_server(document, where))
        return self.current


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    assert shutil.which("curl"), "the transcripts run curl: apt-get install curl"
    started = Servers(tmp_path_factory)
    with started.stack:
        yield started


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(
            block,
            id=block.id,
            marks=[pytest.mark.skip(reason=block.not_executed)] if block.not_executed else [],
        )
        for block in BLOCKS
        if block.calls_server
    ],
)
def test_transcript(servers: Servers, block: Block) -> None:
    failures = servers.transcript(block.document).failures_of(block)
    assert not failures, "\n\n".join(failures)


def test_enough_of_the_docs_runs() -> None:
    """The parser finds the transcripts, and no block that talks to the server is left out unsaid."""
    assert len(RUN) >= MIN_BLOCKS, [block.id for block in RUN]
    assert {block.document for block in RUN} >= {"README.md", "docs/api.md"}
    assert sum(len(block.commands) for block in RUN) >= MIN_COMMANDS
    unsaid = [
        block.id for block in BLOCKS if block.mentions_server and not block.runs and not block.not_executed
    ]
    assert unsaid == [], "mark them <!-- readme-test: not executed: REASON --> or make them curl the server"
    not_console = [block.id for block in BLOCKS if block.mentions_server and block.language != "console"]
    assert not_console == [], "a transcript that calls the server is a ```console block, so that it runs"


def test_a_here_document_is_one_command_with_no_output() -> None:
    """What a reader copies to make a file is run as it is, and the next ``$`` is a command of its own."""
    text = "```console\n$ cat > a.csv <<'EOF'\nid,text\n$ not a command\nEOF\n$ cat a.csv\nid,text\n```\n"
    [block] = fenced_blocks(text, "page.md")
    assert [(command.line, command.text, command.expected) for command in block.commands] == [
        (2, "cat > a.csv <<'EOF'\nid,text\n$ not a command\nEOF", ""),
        (6, "cat a.csv", "id,text"),
    ]
    assert block.id == "page.md:1 "


def test_masks_and_bindings() -> None:
    """A masked value may differ; anything else, or a bound value coming back different, may not."""
    bindings = Bindings()
    shown = '{"id": "13c26b8c-eee3-4394-8a87-90eecc7d114c", "at": "2026-12-01T19:05:36.818+00:00"}'
    same_id = '{"id": "0f0f0f0f-eee3-4394-8a87-90eecc7d114c", "at": "2027-01-02T03:04:05.006+00:00"}'
    assert bindings.match(shown, same_id)
    assert bindings.substitute(
        "curl localhost:8000/batch-predictions/13c26b8c-eee3-4394-8a87-90eecc7d114c"
    ) == ("curl localhost:8000/batch-predictions/0f0f0f0f-eee3-4394-8a87-90eecc7d114c")
    other_id = '{"id": "11111111-eee3-4394-8a87-90eecc7d114c", "at": "2027-01-02T03:04:05.006+00:00"}'
    assert not bindings.match(shown, other_id)
    assert not bindings.match(shown, same_id.replace('"id"', '"job"'))
    assert not bindings.match(
        '{"id": "22222222-eee3-4394-8a87-90eecc7d114c"}', same_id[: same_id.index(",")] + "}"
    )
    assert not bindings.match(
        "33333333-0000-0000-0000-000000000000 33333333-0000-0000-0000-000000000000",
        "44444444-0000-0000-0000-000000000000 55555555-0000-0000-0000-000000000000",
    )
    assert masked(shown) == '{"id": "<job-id>", "at": "<timestamp>"}'


def test_floats_agree_to_a_billionth_not_to_the_last_digit() -> None:
    shown = '{"cv": 0.053501407211675144, "nlp": 0.9094846301512601, "n": 3}'
    assert same_floats(shown, '{"cv": 0.053501407211675435, "nlp": 0.9094846301512597, "n": 3}') == shown
    off = '{"cv": 0.053501407311675144, "nlp": 0.9094846301512597, "n": 3}'  # the 10th digit differs
    assert same_floats(shown, off) == '{"cv": 0.053501407311675144, "nlp": 0.9094846301512601, "n": 3}'
    assert (
        same_floats(shown, '{"cv": 0.053501407211675435, "n": 3}') == '{"cv": 0.053501407211675435, "n": 3}'
    )


#: A response-like document for the jq filters of the README: numbers jq 1.6 prints its own way included.
_JQ_INPUT = {
    "data": {
        "job": {"id": "j", "items": {"done": 2, "total": 2}, "progress": 1.0, "status": "succeeded"},
        "job_token": None,
        "model": {"name": "project-tagger", "version": 1},
        "version": {
            "version": 2,
            "status": "ready",
            "finished_at": None,
            "dataset": {"rows": 1230, "sha256": "d"},
        },
        "versions": [
            {
                "version": 1,
                "aliases": ["production"],
                "performance": {"overall": {"f1": 0.9015033609460854}},
                "args": {"C": 10.0, "threshold": None, "test_size": 0.15},
            },
            {"version": 2, "aliases": [], "performance": {"overall": {"f1": 1e-05}}, "args": {"C": 3.0}},
        ],
        "events": [
            {
                "sequence": 6,
                "actor": "82007d29a6e0",
                "action": "alias.moved",
                "from_version": 1,
                "to_version": 2,
                "reason": "better",
                "request_id": None,
                "hash": "0" * 64,
            },
        ],
        "results": [
            {"id": "p-1", "model_version": 1, "predicted_tag": "mlops"},
            {"id": "p-2", "predicted_tag": None},
        ],
        "predictions": [
            {
                "predicted_tag": "mlops",
                "explanation": {
                    "tag": "mlops",
                    "intercept": 0.5,
                    "logit": 1.5,
                    "remainder": -0.25,
                    "terms": [{"term": "ml ops", "analyzer": "word", "weight": 1.25}],
                },
            },
            {"predicted_tag": "other", "text": 'é "q"', "explanation": {"tag": "other", "terms": []}},
        ],
    }
}


def _jq_filters() -> list[list[str]]:
    """The arguments of every ``jq`` the executed transcripts run (each is a pipeline's last command), and two more."""
    filters: dict[str, list[str]] = {}
    for block in RUN:
        for command in block.commands:
            words = shlex.split(command.text, comments=True)
            if "jq" in words:
                args = words[words.index("jq") + 1 :]
                filters[" ".join(args)] = args
    return [
        *filters.values(),
        [".data.versions[] | {version, C: .args.C}"],
        ["-c", "[.data.versions[].args]"],
    ]


@pytest.mark.skipif(
    not shutil.which("jq")
    or subprocess.run(["jq", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    != "jq-1.6",
    reason="jq 1.6 is not installed",
)
@pytest.mark.parametrize("args", _jq_filters(), ids=" ".join)
def test_the_jq_stand_in_prints_what_jq_prints(args: list[str]) -> None:
    document = json.dumps(_JQ_INPUT)
    real = subprocess.run(["jq", *args], input=document, capture_output=True, text=True, check=True).stdout
    ours = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tests" / "readme_jq.py"), *args],
        input=document,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ours == real


def test_the_jq_stand_in_refuses_what_it_does_not_know() -> None:
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tests" / "readme_jq.py"), ".data | select(.job)"],
        input="{}",
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "jq (tests/readme_jq.py) does not know: select\n",
    )
