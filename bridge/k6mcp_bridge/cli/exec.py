"""``k6mcp-bridge exec [bridge options] -- k6 run [k6 args] script.js``: the bridge starts k6.

The command takes ``run``'s options (the same parameters, so the two cannot drift apart) but
SOURCE, ``--follow`` and the options that go with it: k6's JSON comes on a private named pipe,
or from the ``--out json=FILE`` the k6 command names (see ``delivery/k6_process.py``).
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from .app import app
from .run import launch, run

_NOT_FOR_EXEC = frozenset(
    {"source", "follow", "from_end", "poll", "idle_timeout", "wait_pid", "checkpoint",
     "abort_on_fail", "listen", "listen_token", "listen_max_body"}
)  # fmt: skip
"""``run``'s parameters that ``exec`` decides itself (k6's pipe; abortOnFail stops k6), and
the other source (``--listen``)."""

_RUN = inspect.signature(run, eval_str=True).parameters


def exec_command(**params: Any) -> None:
    """Run k6 and read its results: k6's console stays on the terminal, its JSON comes on a
    private named pipe. Exit status: k6's, or the bridge's own when more severe."""
    k6_command = params.pop("k6_command")
    given = {name: parameter.default for name, parameter in _RUN.items()}
    given.update(params)
    launch(given, k6_command)


_K6_COMMAND = inspect.Parameter(
    "k6_command",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    annotation=Annotated[
        list[str],
        typer.Argument(
            help="The k6 command, after --: k6 run, its options, the script.",
            metavar="-- k6 run [K6 OPTIONS] SCRIPT",
            show_default=False,
        ),
    ],
)
_PARAMETERS = [_K6_COMMAND, *(p for name, p in _RUN.items() if name not in _NOT_FOR_EXEC)]
exec_command.__signature__ = inspect.Signature(_PARAMETERS)  # type: ignore[attr-defined]
exec_command.__annotations__ = {p.name: p.annotation for p in _PARAMETERS}
app.command("exec")(exec_command)
