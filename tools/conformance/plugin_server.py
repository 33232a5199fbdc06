"""What every stand-in plugin of the conformance run shares: the Pulumi plugin start-up
handshake (serve gRPC on a loopback port and print that port as the first line of stdout,
which is how the CLI learns where to connect) and the engine's message-size limits."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

import grpc
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS

__all__ = ["serve"]


def serve(register: Callable[[grpc.Server], None]) -> None:
    """Start a gRPC server with the services `register` adds, announce its port, block."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=_GRPC_CHANNEL_OPTIONS)
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # The CLI reads exactly one line with the port from a plugin's stdout before dialling it.
    print(port, flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        # The engine ends its plugins with SIGINT when the operation is over.
        server.stop(grace=None)
