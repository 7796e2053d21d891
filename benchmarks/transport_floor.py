"""The floor of a round trip between two Python processes, by transport, side by side in one run.

    python benchmarks/transport_floor.py [--rounds N]

A child process serves a bidirectional gRPC stream and a unary gRPC method that echo their
message, and a plain TCP socket that echoes its bytes; the parent sends 200 bytes on each in
turn and waits for them to come back. Prints the median round trip of each, and its ratio to the
socket's. What it shows is why the server offers its direct lane (server/lane.py): gRPC's Python
stack hands each message between threads on both sides.
"""
from __future__ import annotations

import argparse
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc

PAYLOAD = b"x" * 200


def _serve() -> None:
    def stream(requests, context):
        yield from requests

    handler = grpc.method_handlers_generic_handler("floor.Echo", {
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
        "Unary": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    listener = socket.create_server(("127.0.0.1", 0))

    def echo() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(65536):
            conn.sendall(data)
    threading.Thread(target=echo, daemon=True).start()
    print(port, listener.getsockname()[1], flush=True)
    server.wait_for_termination()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=10, help="rounds of 300 round trips on each transport")
    args = p.parse_args()
    child = subprocess.Popen([sys.executable, __file__], env=dict(os.environ, TRANSPORT_FLOOR_SERVE="1"),
                             stdout=subprocess.PIPE, text=True)
    try:
        grpc_port, socket_port = map(int, child.stdout.readline().split())
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        requests: queue.SimpleQueue = queue.SimpleQueue()
        replies = channel.stream_stream("/floor.Echo/Stream")(iter(requests.get, None))
        unary = channel.unary_unary("/floor.Echo/Unary")
        sock = socket.create_connection(("127.0.0.1", socket_port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def on_stream():
            requests.put(PAYLOAD)
            next(replies)

        def on_socket():
            sock.sendall(PAYLOAD)
            got = 0
            while got < len(PAYLOAD):
                got += len(sock.recv(65536))
        ways = {"gRPC stream": on_stream, "gRPC unary call": lambda: unary(PAYLOAD), "TCP socket": on_socket}
        times: dict = {name: [] for name in ways}
        for fn in ways.values():
            for _ in range(100):
                fn()
        for _ in range(args.rounds):  # alternating rounds: the machine's speed drifts
            for name, fn in ways.items():
                for _ in range(300):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
        requests.put(None)
        sock.close()
        channel.close()
    finally:
        child.terminate()
        child.wait()
    floor = statistics.median(times["TCP socket"])
    for name, samples in times.items():
        m = statistics.median(samples)
        print(f"{name:16s} round trip {m * 1e6:8.1f} us  {m / floor:6.1f}x the socket's")


if __name__ == "__main__":
    if os.environ.get("TRANSPORT_FLOOR_SERVE"):
        _serve()
    else:
        main()
