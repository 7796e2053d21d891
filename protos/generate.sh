#!/usr/bin/env bash
# Regenerates the stubs from autograd.proto (needs the dev extra: grpcio-tools). Never edit the stubs.
set -euo pipefail
cd "$(dirname "$0")"
python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. autograd.proto
# the generated service module imports its messages as a top-level module; make it package-relative
sed -i 's/^import autograd_pb2 as autograd__pb2/from . import autograd_pb2 as autograd__pb2/' autograd_pb2_grpc.py
