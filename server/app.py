"""Builds and runs the gRPC server: the servicer, health checking, reflection, graceful stop."""
from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import threading
import time
from concurrent import futures

import grpc
import numpy
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..protos import autograd_pb2 as pb
from . import batches
from .api_keys import ApiKeys, keygen
from .lane import Lane
from .registry import Limits, Registry
from .service import Servicer, add_to_server
from .tls import TLS, from_flags, warn_if_exposed

log = logging.getLogger("remote_autograd.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RemoteAutograd"].full_name


def build(host: str, port: int, limits: Limits, workers: int = 64, direct_port: int = -1, tls: TLS | None = None,
          api_keys: ApiKeys | None = None):
    """A started server and the port it listens on; with ``direct_port`` >= 0 (0: a free one),
    its direct lane too (``server.lane``, None without)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        options=[("grpc.max_receive_message_length", limits.max_message_bytes),
                 ("grpc.max_send_message_length", limits.max_message_bytes),
                 ("grpc.so_reuseport", 0)])
    registry = Registry(limits)
    servicer = Servicer(registry, api_keys)
    add_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, tls.grpc_credentials()) if tls else server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"could not bind {host}:{port}")
    server.lane = None
    if direct_port >= 0:
        server.lane = Lane(host, direct_port, registry, batches.answer, tls.lane_context() if tls else None)
        servicer.direct_port = server.lane.port
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.registry = registry
    server.health = health_servicer
    return server, bound


def _env(name: str, default):
    value = os.environ.get(f"REMOTE_AUTOGRAD_{name}")
    return type(default)(value) if value is not None else default


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="remote-autograd", description="Serve remote autograd sessions over gRPC.")
    p.add_argument("command", nargs="?", default="serve", choices=["serve", "keygen"],
                   help="serve (the default), or keygen TENANT: make an API key and print its --api-keys line")
    p.add_argument("tenant", nargs="?", help="keygen: the tenant the new key names")
    p.add_argument("--api-keys", default=_env("API_KEYS", ""),
                   help="a file of API keys' SHA-256 digests, a line each: TENANT SHA256HEX [MAX_SESSIONS]; "
                        "then CreateSession, Ping and Echo need a key (x-api-key), and each tenant has its "
                        "own session limit")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to bind (0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=_env("PORT", 50051), help="0 picks a free port")
    p.add_argument("--workers", type=int, default=_env("WORKERS", 64), help="RPC worker threads")
    p.add_argument("--direct-port", type=int, default=_env("DIRECT_PORT", 0),
                   help="the direct lane's TCP port (0 picks a free one; -1: no lane): batches without "
                        "gRPC's per-message cost, offered to each new session; a client that cannot "
                        "reach it (behind a gateway, say) uses the gRPC stream")
    p.add_argument("--max-sessions", type=int, default=_env("MAX_SESSIONS", 1000))
    p.add_argument("--max-streams", type=int, default=_env("MAX_STREAMS", -1),
                   help="open batch streams (each holds a worker thread; past it clients use unary "
                        "calls); -1: (workers - 4) / 2, which leaves threads for callbacks and replies")
    p.add_argument("--max-event-streams", type=int, default=_env("MAX_EVENT_STREAMS", -1),
                   help="open Subscribe streams of all sessions (each holds a worker thread: a session "
                        "with hooks or custom Functions has one); -1: (workers - 8) / 2, at least 1, which "
                        "with --max-streams' default leaves threads for unary calls and callbacks' replies")
    p.add_argument("--max-watchers", type=int, default=_env("MAX_WATCHERS", 4),
                   help="open watch streams (Subscribe without controller) of one session")
    p.add_argument("--max-tensors", type=int, default=_env("MAX_TENSORS", 1_000_000),
                   help="tensors one session may hold")
    p.add_argument("--max-commands", type=int, default=_env("MAX_COMMANDS", 100_000),
                   help="commands in one batch (a CALLS command counts one per call)")
    p.add_argument("--max-elements", type=int, default=_env("MAX_ELEMENTS", 1 << 31),
                   help="elements of one tensor that a request uploads or makes (factories, and ops "
                        "whose arguments name the shape they make, such as repeat), checked before it "
                        "is allocated")
    p.add_argument("--max-message-bytes", type=int, default=_env("MAX_MESSAGE_BYTES", 256 << 20),
                   help="bytes of one gRPC message or direct lane frame (large tensors travel in "
                        "chunks through Upload and Download, whatever their size)")
    p.add_argument("--max-echo-bytes", type=int, default=_env("MAX_ECHO_BYTES", 4 << 20),
                   help="bytes of one Echo (it needs no session)")
    p.add_argument("--seq-window", type=int, default=_env("SEQ_WINDOW", 64),
                   help="how far ahead of the next batch to run a numbered batch may be, and how many "
                        "of one session's batches may wait for their turn at once")
    p.add_argument("--seq-wait", type=float, default=_env("SEQ_WAIT", 10.0),
                   help="seconds a numbered batch waits for the batches numbered before it")
    p.add_argument("--session-ttl", type=float, default=_env("SESSION_TTL", 3600.0),
                   help="seconds an idle session lives without an open event stream")
    p.add_argument("--callback-timeout", type=float, default=_env("CALLBACK_TIMEOUT", 60.0),
                   help="seconds the server waits for a client's hook answer")
    p.add_argument("--state-dir", default=_env("STATE_DIR", ""),
                   help="snapshot sessions here, and restore them from here at start")
    p.add_argument("--snapshot-interval", type=float, default=_env("SNAPSHOT_INTERVAL", 30.0),
                   help="seconds between snapshots of changed sessions (with --state-dir)")
    p.add_argument("--grace", type=float, default=_env("GRACE", 10.0), help="seconds to finish calls on SIGTERM")
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    p.add_argument("--tls-cert", default=_env("TLS_CERT", ""),
                   help="PEM certificate chain: serve gRPC and the direct lane over TLS (with --tls-key)")
    p.add_argument("--tls-key", default=_env("TLS_KEY", ""), help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca", default=_env("TLS_CLIENT_CA", ""),
                   help="PEM CA certificates: mutual TLS, every client presents a certificate it signed")
    return p.parse_args(argv)


SIGNAL_SLICE = 0.2  # seconds the main thread waits at most before it looks at a signal's flag
GC_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def tune_gc() -> None:
    """A command allocates a dozen objects (tensor, node, tuples) and a step's graph lives on until
    the client releases it; with Python's default threshold, a young collection ran every ~50
    commands and walked them all, ~4% of a batch of small ops. The engine's graphs avoid reference
    cycles (a node saves its output as an alias without grad_fn: a chain or MLP step leaves no
    cyclic garbage), so collections find little: they run less often, and what the server holds
    from its start is frozen out of them."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.command == "keygen":
        key, line = keygen(args.tenant or "default")
        print(f"key (give it to the tenant; it is not stored): {key}\nline for the --api-keys file: {line}")
        return
    # torch computes log(-1) or 0/0 silently (nan, inf); numpy's warnings would only fill the log
    # (this thread's; a batch's thread sets its own: batches.execute)
    numpy.seterr(all="ignore")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    max_streams = max(0, (args.workers - 4) // 2) if args.max_streams < 0 else args.max_streams
    # batch streams and event streams together leave a quarter of the threads to unary calls
    # (other sessions' calls, new sessions, health checks)
    # (at least one: a session's hooks and custom Functions have no other way to reach their client)
    max_events = max(1, (args.workers - 8) // 2) if args.max_event_streams < 0 else args.max_event_streams
    limits = Limits(max_sessions=args.max_sessions, max_tensors=args.max_tensors, max_streams=max_streams,
                    max_event_streams=max_events, max_watchers=args.max_watchers,
                    seq_window=args.seq_window, seq_wait=args.seq_wait, max_commands=args.max_commands,
                    max_elements=args.max_elements, max_message_bytes=args.max_message_bytes,
                    max_echo_bytes=args.max_echo_bytes,
                    session_ttl=args.session_ttl, callback_timeout=args.callback_timeout,
                    state_dir=args.state_dir or None)
    tls = from_flags(args.tls_cert, args.tls_key, args.tls_client_ca)
    api_keys = ApiKeys.from_file(args.api_keys) if args.api_keys else None
    warn_if_exposed(args.host, tls, api_keys is not None)
    server, port = build(args.host, args.port, limits, args.workers, args.direct_port, tls, api_keys)
    tune_gc()
    if server.lane is not None:
        log.info("direct lane on %s:%d", args.host, server.lane.port)
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("signal %d: stopping (grace %.0f s)", signum, args.grace)
        stop.set()

    # installed before the port is announced: a supervisor may stop the server as soon as it reads it
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"listening on {args.host}:{port}", flush=True)
    tick = max(0.2, min(args.snapshot_interval, 30.0 if args.session_ttl > 60 else 1.0))
    due = time.monotonic() + tick
    # The wait is cut into short slices: the kernel may hand SIGTERM to one of gRPC's threads, and
    # Python runs its handler in this thread only once this thread wakes; a long wait delayed a stop
    # by up to a whole tick (30 s), past a container's grace.
    while not stop.wait(SIGNAL_SLICE):
        if time.monotonic() >= due:
            server.registry.reap()
            server.registry.snapshot()
            due = time.monotonic() + tick
    server.health.enter_graceful_shutdown()
    stopped = server.stop(args.grace)  # refuses new calls from here on
    if server.lane is not None:
        server.lane.stop()
    server.registry.end_streams()  # event streams wait on queues: end them now, not at the grace's end
    stopped.wait()
    saved = server.registry.snapshot()
    log.info("stopped%s", f" ({saved} sessions saved to {args.state_dir})" if args.state_dir else "")
