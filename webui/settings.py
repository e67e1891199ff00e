"""Django settings for Berth's control plane. All configuration comes from the
environment; see the README's configuration table."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from webui import config

BASE_DIR = config.BASE_DIR
SECRET_KEY = config.secret_key()
DEBUG = os.environ.get("BERTH_DEBUG", "") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("BERTH_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("BERTH_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "webui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webui.urls"
ASGI_APPLICATION = "webui.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{config.var_dir() / 'berth.sqlite3'}",
        conn_max_age=int(os.environ.get("BERTH_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, recorder) write: wait for the lock instead of failing,
    # and use WAL so readers never block the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    # Tests get a file too, not a shared in-memory database: its table locks ignore the
    # busy timeout, and the recorder's thread and the test then trip over each other.
    DATABASES["default"]["TEST"] = {"NAME": str(config.var_dir() / "test.sqlite3")}
    if DATABASES["default"].get("NAME") and DATABASES["default"]["NAME"] != ":memory:":
        config.private_file(Path(DATABASES["default"]["NAME"]))  # 0600 before SQLite makes it

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = config.var_dir() / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

BROKER_URL = config.broker_url()
# The Redis stream that hosts write their events to, read by the recorder.
EVENTS_URL = os.environ.get("BERTH_EVENTS_URL", BROKER_URL)
EVENTS_STREAM = os.environ.get("BERTH_EVENTS_STREAM", "berth:events")
# A recorder takes over the events another one read and never acknowledged (it died) once
# they have been pending this long.
RECORDER_CLAIM_SECONDS = float(os.environ.get("BERTH_RECORDER_CLAIM_SECONDS", "30"))
# A queued job that no host took within this many seconds ends "expired".
JOB_EXPIRY_SECONDS = float(os.environ.get("BERTH_JOB_EXPIRY_SECONDS", "3600"))
# The control plane's address as hosts reach it (they fetch build contexts from it).
BERTH_URL = os.environ.get("BERTH_URL", "http://" + os.environ.get("BERTH_BIND", "127.0.0.1:8000")).rstrip("/")
BUILD_CONTEXT_MAX_BYTES = int(os.environ.get("BERTH_BUILD_CONTEXT_MAX_BYTES", str(2 << 30)))

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ.get("BERTH_CHANNELS_URL", BROKER_URL)],
            "prefix": "berth:channels",
            "capacity": 200,
            "expiry": 30,
        },
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("BERTH_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
