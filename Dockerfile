# One image for every service of compose.yaml: the signup app (the default CMD),
# the mailer (`python -m mailer_service`) and the one-shot migrations
# (`alembic upgrade head && outbox migrate`).
FROM python:3.12-slim

# No .pyc files in a read-mostly image; logs reach `docker compose logs` unbuffered.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The services never need to write to the image, so they run as a plain user.
RUN useradd --create-home --uid 10001 --user-group app

# WORKDIR holds pyproject.toml (alembic reads [tool.alembic] from the working
# directory) and migrations/, so `alembic upgrade head` works from here.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY outbox_contract/ outbox_contract/
COPY flask_outbox/ flask_outbox/
COPY signup_service/ signup_service/
COPY mailer_service/ mailer_service/
# Runtime dependencies only: the test and demo extras stay out of the image.
RUN pip install . && rm -rf build ./*.egg-info
COPY migrations/ migrations/
# gunicorn's settings for the signup service: metrics across workers.
COPY gunicorn.conf.py ./

USER app
# 8000: the signup service; 8001: `outbox serve`; 9101: a mailer's /metrics.
EXPOSE 8000 8001 9101
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "signup_service:create_app()"]
