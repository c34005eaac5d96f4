"""Serve the raw-ASGI baseline: ``python -m bench.raw_server ROUTES.json PORT``.

Same uvicorn configuration as ``netweave serve``: one worker, uvloop, httptools, no
access log.  ``/readyz`` answers 200 so the runner can wait for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import uvicorn

from bench.raw_app import make_raw_app


def main() -> None:
    routes_file, port = Path(sys.argv[1]), int(sys.argv[2])
    routes = {path: body.encode() for path, body in json.loads(routes_file.read_text()).items()}
    routes["/readyz"] = b'{"status":"ready"}'
    uvicorn.run(
        make_raw_app(routes),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
