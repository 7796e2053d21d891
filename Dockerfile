FROM python:3.11-slim
# EXTRAS="[gpu]" (CUDA 13, NVIDIA driver 580+) or "[gpu-cuda12]" (driver 525+) builds the GPU image:
# CuPy with the CUDA libraries it loads (cudart, NVRTC, cuBLAS, ...) as PyPI wheels (its [ctk] extra),
# so a slim base serves; the driver itself comes from the host (NVIDIA Container Toolkit).
ARG EXTRAS=""
RUN useradd --create-home --uid 10001 autograd \
    && mkdir -p /var/lib/remote-autograd && chown autograd /var/lib/remote-autograd
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY server server
COPY client client
COPY protos protos
RUN pip install --no-cache-dir ".${EXTRAS}" \
    && python -c "import remote_autograd.server.app" \
    && case "${EXTRAS}" in *gpu*) python -c "import cupy; from cuda.pathfinder import load_nvidia_dynamic_lib as load; \
[load(lib) for lib in ('cudart', 'nvrtc', 'cublas', 'curand', 'cusolver', 'cusparse', 'cufft')]";; esac
USER autograd
ENV REMOTE_AUTOGRAD_HOST=0.0.0.0 REMOTE_AUTOGRAD_PORT=50051 REMOTE_AUTOGRAD_DIRECT_PORT=50052 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
EXPOSE 50051 50052
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD python -c "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
c = grpc.insecure_channel('127.0.0.1:50051'); \
r = g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2); \
sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"
ENTRYPOINT ["remote-autograd", "serve"]
