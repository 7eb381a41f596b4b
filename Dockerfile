# suyuan's HTTP service. Runs from the checkout (never installed: see DESIGN.md, "The trace name").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

RUN pip install --no-cache-dir uv

WORKDIR /srv/suyuan
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY ledger ledger
COPY schemas schemas
COPY trace trace
COPY api api

# The checkout first on the path, so suyuan's `trace` wins over the standard library's.
ENV PYTHONPATH=/srv/suyuan

RUN useradd --system --home /srv/suyuan suyuan && mkdir -p /srv/suyuan/var && chown suyuan /srv/suyuan/var
USER suyuan
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz')" || exit 1
# Migrations run at start-up (`serve` applies them before the workers start).
CMD ["python", "-m", "api.cli", "serve", "--host", "0.0.0.0", "--port", "8000"]
