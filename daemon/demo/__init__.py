"""`selfpub demo`: the whole loop offline, in its own corner of the daemon room.

    daemon/commands/demo_cmd.py ──> daemon.demo.run_demo   (the package's one export)

    daemon/demo/loop.py       the demo: fund the agent, cycles until the pause, a tip on
                              chain, the resume, the report and the chart
    daemon/demo/localpds.py   a local Bluesky PDS on 127.0.0.1 (the Node peer); only the demo
                              and the tests' peer (tests/peers/pds.py) start it

Nothing else in daemon/ imports the demo's modules: the service never needs them.
"""

from daemon.demo.loop import run_demo

__all__ = ["run_demo"]
