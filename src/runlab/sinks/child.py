"""The mirror process of a run: ``python -m runlab.sinks.child REPLY_FD``.

Reads pickled messages from stdin, written by :class:`runlab.sinks.mirror.MirrorProcess` of
the same user in the parent (``("start", sinks, meta)``, ``("records", [...])``, ``("final",
final, lost)``), runs the sinks with :class:`runlab.sinks.mirror.Mirror` (a thread each), and
writes JSON lines to REPLY_FD (``{"kind": "warn", "sink", "message"}``, ``{"kind": "done"}``).
Ends when the parent does: on the final message, or at end of input.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import sys
from typing import Any, BinaryIO


def main(reply_fd: int, source: BinaryIO) -> None:
    with contextlib.suppress(OSError):  # where cores are few, training gets them first
        os.nice(10)
    # MLflow 3 sends usage telemetry from a thread of its own: not from inside a training job
    # (it costs CPU next to the training and reaches for the network). The user's own setting
    # wins; this process is ours, so the environment is ours to set.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    replies = os.fdopen(reply_fd, "w", buffering=1, encoding="utf-8")

    def reply(**fields: Any) -> None:
        replies.write(json.dumps(fields) + "\n")

    from runlab.sinks.mirror import Mirror

    mirror: Mirror | None = None
    while True:
        try:
            message = pickle.load(source)
        except EOFError:  # the run's process died: leave what was mirrored; sync redoes it
            break
        except Exception as err:  # a sink class the child cannot import, say
            from runlab.sinks.mirror import describe_error

            reply(kind="warn", sink="mirror", message=f"mirrors off: {describe_error(err)}")
            break
        kind = message[0]
        if kind == "start":
            _, sinks, meta = message
            mirror = Mirror(sinks, lambda sink, text: reply(kind="warn", sink=sink, message=text))
            mirror.start(meta)
        elif kind == "records" and mirror is not None:
            for record in message[1]:
                mirror.put(record)
        elif kind == "final" and mirror is not None:
            mirror.finish(message[1], lost=message[2])
            break
    reply(kind="done")
    replies.flush()
    os._exit(0)  # a sink left behind after its deadline must not keep the process alive


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.stdin.buffer)
