"""Runs the Autobahn WebSocket conformance cases (with kosoku) against a Wisp echo channel.

Usage: python3 check.py WS_URL EXPECTED_FILE [--bless]

Each case's verdict ("1.1.1 conforms conforms": behavior, then closing behavior) is compared
with EXPECTED_FILE. Autobahn's OK and NON-STRICT both conform (which of the two a timing-
sensitive case gets can vary between runs), so both are written `conforms`; INFORMATIONAL and
UNIMPLEMENTED (the permessage-deflate cases: Wisp does not negotiate compression) are kept as
they are. Any difference, or any FAILED/ERROR verdict, fails the run. --bless rewrites the
expected file. Cases run one at a time: they share one echo channel.
"""

import asyncio
import collections
import os
import sys

from kosoku import FailureError, run_fuzzingclient

BAD = {"FAILED", "ERROR"}


def label(verdict) -> str:
    value = getattr(verdict, "value", str(verdict))
    return "conforms" if value in ("OK", "NON-STRICT") else value


def case_key(case_id: str):
    return tuple(int(part) for part in case_id.split("."))


async def verdicts(url: str) -> dict[str, str]:
    try:
        results = await run_fuzzingclient(url, concurrency=1)
    except FailureError as failure:
        # kosoku fails the run on any case that is not OK, UNIMPLEMENTED (compression,
        # which Wisp does not offer) and INFORMATIONAL included; its results hold every
        # case, and each is checked against the expected verdicts below.
        results = failure.results
        flagged = sum(1 for r in results if label(r.behavior) != "conforms")
        print(
            f"kosoku flagged {flagged} of {len(results)} cases as not OK (unimplemented and "
            "informational ones included); checking each against the expected verdicts",
            file=sys.stderr,
        )
    return {r.case_id: f"{label(r.behavior)} {label(r.behavior_close)}" for r in results}


def main() -> int:
    url, expected_file = sys.argv[1], sys.argv[2]
    got = asyncio.run(verdicts(url))
    lines = [f"{case} {got[case]}" for case in sorted(got, key=case_key)]
    if "--bless" in sys.argv:
        with open(expected_file, "w") as out:
            out.write("\n".join(lines) + "\n")
    with open(expected_file) as f:
        expected = [line.strip() for line in f if line.strip()]

    counts = collections.Counter(v.split()[0] for v in got.values())
    bad = [line for line in lines if line.split()[1] in BAD or line.split()[2] in BAD]
    missing = sorted(set(expected) - set(lines), key=lambda l: case_key(l.split()[0]))
    extra = sorted(set(lines) - set(expected), key=lambda l: case_key(l.split()[0]))
    print(f"autobahn: {len(got)} cases: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    for line in bad:
        print(f"  non-conforming: {line}")
    for line in missing:
        print(f"  expected: {line}")
    for line in extra:
        print(f"  got:      {line}")
    failed = len(bad) + len(missing) + len(extra)
    print(f"autobahn: {len(got) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    code = main()
    # kosoku can leave threads behind whose teardown aborts the interpreter (SIGABRT) after
    # the verdicts are in: exit without tearing down, so the exit code is the verdict.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
