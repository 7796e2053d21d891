"""Per-op round trip of a tiny remote op (eager mode) against a raw gRPC unary ping, in one run.

    python benchmarks/remote_op_vs_ping.py [--n 2000]
"""
from __future__ import annotations

import argparse

import grpc
import remote_autograd as ra
from _server import local_server
from engine_vs_torch import timeit
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos import autograd_pb2_grpc as pb_grpc


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args()
    with local_server() as address:
        channel = grpc.insecure_channel(address)
        stub = pb_grpc.RemoteAutogradStub(channel)
        empty = pb.Empty()
        ping = timeit(lambda: stub.Ping(empty), 5, args.n)
        # eager: every op is its own round trip (the lazy default would only queue it)
        with ra.connect(address, eager=True) as t:
            a = t.ones(4, requires_grad=True)
            op = timeit(lambda: a * 2.0, 5, args.n)
        channel.close()
    print(f"raw gRPC unary ping      {ping * 1e6:8.1f} us")
    print(f"tiny remote op (a * 2.0) {op * 1e6:8.1f} us")
    print(f"ratio op/ping            {op / ping:8.2f}x")


if __name__ == "__main__":
    main()
