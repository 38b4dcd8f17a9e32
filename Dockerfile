# The production image: the same `durabot` commands as on a laptop (`durabot worker`, `durabot gateway`).
FROM python:3.12-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DURABOT_VAR_DIR=/var/lib/durabot
COPY pyproject.toml constraints.txt README.md ./
COPY trading trading
COPY core core
COPY services services
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY gateway gateway
COPY sim sim
COPY durabot durabot
COPY data data
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system --home /var/lib/durabot durabot \
    && mkdir -p /var/lib/durabot && chown durabot /var/lib/durabot
USER durabot
ENTRYPOINT ["durabot"]
CMD ["gateway"]
