FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY domain ./domain
COPY adapters ./adapters
COPY worker ./worker
RUN pip install --no-cache-dir . && useradd --system --uid 10001 einvoice && mkdir -p /app/var \
    && chown einvoice /app/var
USER einvoice
CMD ["python", "-m", "worker", "worker"]
