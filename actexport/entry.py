"""The console script: starts the worker processes' forkserver, then imports the command line.

Importing torch takes ~1.7 s here and the forkserver imports it too, for the workers; starting
the forkserver first lets both imports run at once on separate cores.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from actexport.lifecycle import Terminated, report_stop

    try:
        # NOTE: a --module run stays in this process (model/verify.py): a forkserver would only
        # compete with it for the cores while importing torch a second time.
        model = any(a == "--module" or a.startswith("--module=") for a in args)
        if args[:1] and args[0] in ("verify", "export", "check") and "--in-process" not in args and not model:
            from actexport.isolate import warm_up
            from actexport.lifecycle import begin_run

            begin_run()
            warm_up()  # the forkserver imports torch while this process does
        from actexport.cli import main as cli_main

        return cli_main(argv)
    except (KeyboardInterrupt, Terminated) as e:  # NOTE: during imports; cli.main handles one during the run
        return report_stop(e)
