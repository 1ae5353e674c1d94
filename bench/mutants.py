"""`make mutate`'s verdict, after `mutmut run`: the score, and every mutant no test kills.

Each mutant not killed (survived, or "no tests": no selected test runs its code) must be listed in
bench/mutants-equivalent.md with its reason, and every listed mutant must be such a survivor;
anything else fails the target, naming it (`mutmut show NAME` prints its diff). Timeouts count as
killed: the mutant made the tests hang (an infinite loop), which a user would notice.

`--survivors` prints only the names of the mutants that survived, for `make mutate` to run them
again with every example of the property tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "bench" / "mutants-equivalent.md"
#: A listed mutant: "- `name`: reason".
_LISTED = re.compile(r"^- `([^`]+)`: \S")
_RESULT = re.compile(r"^\s+(\S+): (.+)$")


def listed() -> set[str]:
    lines = EQUIVALENT.read_text(encoding="utf-8").splitlines()
    return {m[1] for line in lines if (m := _LISTED.match(line))}


def results(prefixes: list[str]) -> dict[str, str]:
    """Each mutant's status, of every module or only those whose names start with one of ``prefixes``."""
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return {
        m[1]: m[2]
        for line in out.splitlines()
        if (m := _RESULT.match(line)) and m[1].startswith(tuple(prefixes) or "")
    }


def main(prefixes: list[str]) -> int:
    """The score over every mutant, or over those of the modules named by ``prefixes``."""
    status = results(prefixes)
    if not status:
        print("no mutants: run `mutmut run` first", file=sys.stderr)
        return 1
    by_status = Counter(status.values())
    print(", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    checked = {name: s for name, s in status.items() if s != "not checked"}
    alive = {name for name, s in checked.items() if s in ("survived", "no tests")}
    odd = {name for name, s in checked.items() if s not in ("survived", "no tests", "killed", "timeout")}
    killed = by_status["killed"] + by_status["timeout"]
    equivalent = alive & listed()
    if checked:
        print(
            f"killed {killed} of {len(checked)} mutants run ({100 * killed / len(checked):.1f}%); "
            f"{len(equivalent)} listed as equivalent in {EQUIVALENT.relative_to(ROOT)}: "
            f"{100 * killed / (len(checked) - len(equivalent)):.1f}% of the others killed"
        )
    unexplained = sorted((alive - equivalent) | odd)
    for name in unexplained:
        print(f"not killed, not listed: {name} ({status[name]})", file=sys.stderr)
    # A listing outlives its mutant when the code changes: mutmut numbers a function's mutants in order.
    stale = sorted(
        name
        for name in listed()
        if name.startswith(tuple(prefixes) or "") and status.get(name, "gone") not in ("survived", "no tests")
    )
    for name in stale:
        print(f"listed, but not a survivor: {name} ({status.get(name, 'no such mutant')})", file=sys.stderr)
    if len(checked) < len(status):
        print(f"{len(status) - len(checked)} mutants not run", file=sys.stderr)
    return 1 if unexplained or stale or len(checked) < len(status) else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--survivors"]:
        print(" ".join(name for name, s in results(sys.argv[2:]).items() if s == "survived"))
    else:
        sys.exit(main(sys.argv[1:]))
