"""The console script: starts the worker processes' forkserver, then imports the command line.

Importing torch takes ~1.7 s here and the forkserver imports it too, for the workers; starting
the forkserver first lets both imports run at once on separate cores.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from actexport.isolate import Terminated

    try:
        if args[:1] and args[0] in ("verify", "export", "check") and "--in-process" not in args:
            from actexport.isolate import begin_run

            begin_run()
        from actexport.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:  # NOTE: cli.main says the same for a signal during the run; this is one during imports
        print("actexport: interrupted (SIGINT); the run stopped there and is not a pass", file=sys.stderr)
        return 130
    except Terminated:
        print("actexport: terminated (SIGTERM); the run stopped there and is not a pass", file=sys.stderr)
        return 143
