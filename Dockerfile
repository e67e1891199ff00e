# The image for web, recorder and worker in docker-compose.yml.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends runc conmon tini iptables nftables \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/berth
COPY pyproject.toml constraints.txt README.md ./
COPY engine engine
COPY workers workers
COPY webui webui
COPY templates templates
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir -c constraints.txt .
ENV BERTH_VAR=/var/lib/berth-web PYTHONUNBUFFERED=1
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "daphne", "-b", "0.0.0.0", "-p", "8000", "webui.asgi:application"]
