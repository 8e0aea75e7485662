"""WebSocket conformance: the Autobahn TestSuite cases, driven by kosoku's fuzzing client against
the raw WebSocket echo `/echo/websocket` of the test server.

Every case must pass: behaviour OK, NON-STRICT or INFORMATIONAL, and closing behaviour OK or
INFORMATIONAL. UNIMPLEMENTED is accepted only for 12.* and 13.*: those are the permessage-deflate
cases, and the server offers no compression (it never answers Sec-WebSocket-Extensions).

The report (JSON and HTML per case, index.json) goes to a temporary directory, named in the
failure message; it is never written into the repository.

$SOCKJS_AUTOBAHN_CASES and $SOCKJS_AUTOBAHN_EXCLUDE (comma-separated ids or globs, e.g. "9.*")
narrow the run for local work; CI runs every case.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time

import kosoku
import pytest

ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
ACCEPTED_CLOSE = {"OK", "INFORMATIONAL"}
# permessage-deflate: not offered by the server, so not implemented is the right answer.
COMPRESSION_GROUPS = {"12", "13"}
# Bound of the whole run: the 9.* cases move up to 16 MiB messages through a debug build.
RUN_TIMEOUT = 1800


def verdict(result) -> str | None:
    """None if the case passed, else why not."""
    behavior, close = result.behavior.value, result.behavior_close.value
    group = result.case_id.split(".")[0]
    if behavior == "UNIMPLEMENTED" and group in COMPRESSION_GROUPS:
        return None
    if behavior in ACCEPTED and close in ACCEPTED_CLOSE:
        return None
    return (f"{result.case_id}: behavior={behavior} close={close} "
            f"({result.result}; {result.result_close})")


def env_list(name: str) -> list[str] | None:
    value = os.environ.get(name, "").strip()
    return [v.strip() for v in value.split(",") if v.strip()] or None


@pytest.mark.autobahn
@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_autobahn_fuzzingclient(sockjs_server, tmp_path_factory):
    # A server of its own: the 9.* cases leave a lot of memory behind in the allocator.
    server = sockjs_server(tag="autobahn")
    url = f"ws://127.0.0.1:{server.port}/echo/websocket"
    start = time.monotonic()

    async def run():
        try:
            return await asyncio.wait_for(
                kosoku.run_fuzzingclient(url, env_list("SOCKJS_AUTOBAHN_CASES"),
                                         env_list("SOCKJS_AUTOBAHN_EXCLUDE")),
                RUN_TIMEOUT)
        except kosoku.FailureError as failure:  # some case did not pass: we judge them below
            return failure.results

    results = asyncio.run(run())
    elapsed = time.monotonic() - start

    report_dir = tmp_path_factory.mktemp("autobahn-report")
    from kosoku._report import write_reports  # the report writer of kosoku's own CLI

    write_reports(results, str(report_dir))

    counts = collections.Counter((r.behavior.value, r.behavior_close.value) for r in results)
    summary = (f"{len(results)} cases in {elapsed:.0f} s; verdicts {dict(counts)}; "
               f"report in {report_dir}")
    print(summary)
    assert results, "kosoku ran no case"
    failures = [v for v in map(verdict, results) if v]
    assert not failures, f"{len(failures)} failing cases; {summary}:\n" + "\n".join(failures[:50])
