# The playground + proxy (python app.py, port 7860) or the headless proxy (python -m router serve).
#
#   docker build -t prefill-router .
#   docker run -p 7860:7860 -e OPENROUTER_API_KEY prefill-router
#   docker run -p 8000:8000 -e PORT=8000 prefill-router python -m router serve --host 0.0.0.0 --port 8000
#   (PORT tells the health check where to look)
#
# CPU by default. CUDA variant (docs/deploy.md): the CUDA torch wheels bundle their CUDA libraries,
# so only the index changes; run with `--gpus all` on a host with the NVIDIA container toolkit:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t prefill-router:cuda .
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ROUTER_CACHE=/opt/prefill-router/cache \
    ROUTER_MODEL_CACHE=/opt/prefill-router/models \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_ANALYTICS_ENABLED=False

WORKDIR /app
RUN useradd --create-home --uid 1000 router

# Dependencies first: this layer is rebuilt only when a requirements file changes.
COPY requirements.txt requirements-nodeps.txt requirements-otel.txt ./
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0 \
 && pip install -r requirements.txt -r requirements-otel.txt \
 && pip install --no-deps -r requirements-nodeps.txt

COPY app.py README.md ./
COPY router/ router/
COPY configs/ configs/
COPY assets/ assets/

# Convert the bundled encoder and export it to ONNX into ROUTER_MODEL_CACHE now, and checkpoint-fast's int8
# student graph too, so that choosing its pool line builds nothing at run time (the build's root and the run's
# user have different homes, so the cache is named, not ~/.cache); the container then starts without any
# network. Hub downloads are forbidden at run time (a missing model is an error, not a silent fetch).
RUN python -m router route "Warm the encoder cache at build time." --config configs/default.yaml > /dev/null \
 && python -m router route "Warm the fast path too." --config configs/options/routerbench-11-fast.yaml > /dev/null \
 && chown -R router:router /opt/prefill-router
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

USER router
EXPOSE 7860
# /health/ready answers 200 once the routers are loaded and the upstream client exists.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('GRADIO_SERVER_PORT') or os.environ.get('PORT') or '7860'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health/ready', timeout=4).status == 200 else 1)"]
CMD ["python", "app.py"]
