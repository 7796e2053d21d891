FROM python:3.11-slim
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
    && python -c "import remote_autograd.server.app"
USER autograd
ENV REMOTE_AUTOGRAD_HOST=0.0.0.0 REMOTE_AUTOGRAD_PORT=50051 REMOTE_AUTOGRAD_DIRECT_PORT=50052
EXPOSE 50051 50052
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD python -c "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
c = grpc.insecure_channel('127.0.0.1:50051'); \
r = g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2); \
sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"
ENTRYPOINT ["remote-autograd", "serve"]
