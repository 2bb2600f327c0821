"""How to reach the broker: the URL and the credentials, shared by the publisher and the merger.

The publisher takes them as plugin options (``-o nats.token=...``); the merger, whose command
line belongs to the core, from environment variables of the same names upper-cased:
``K6MCP_NATS_TOKEN``, ``K6MCP_NATS_USER``, ``K6MCP_NATS_PASSWORD``, ``K6MCP_NATS_CREDS``,
``K6MCP_NATS_TLS_CA``, ``K6MCP_NATS_TLS_CERT``, ``K6MCP_NATS_TLS_KEY``. A URL may also carry
``user:password@`` or ``token@``, and ``tls://`` asks for TLS with the system's CAs.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_URL = "nats://127.0.0.1:4222"
ENV_PREFIX = "K6MCP_NATS_"


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = None
    user: str | None = None
    password: str | None = None
    creds: str | None = Field(None, description="A .creds file (JWT and NKey seed)")
    tls_ca: str | None = Field(None, description="CA bundle that signs the server's certificate")
    tls_cert: str | None = Field(None, description="Client certificate (mutual TLS)")
    tls_key: str | None = Field(None, description="The client certificate's key")


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credentials:
    environ = os.environ if environ is None else environ
    values = {
        name: environ[ENV_PREFIX + name.upper()]
        for name in Credentials.model_fields
        if environ.get(ENV_PREFIX + name.upper())
    }
    return Credentials.model_validate(values)


def connect_options(credentials: Credentials) -> dict[str, Any]:
    """Keyword arguments of ``nats.connect`` for ``credentials``."""
    options: dict[str, Any] = {}
    if credentials.token:
        options["token"] = credentials.token
    if credentials.user:
        options["user"] = credentials.user
    if credentials.password:
        options["password"] = credentials.password
    if credentials.creds:
        options["user_credentials"] = credentials.creds
    if credentials.tls_ca or credentials.tls_cert:
        context = ssl.create_default_context(cafile=credentials.tls_ca)
        if credentials.tls_cert:
            context.load_cert_chain(credentials.tls_cert, credentials.tls_key)
        options["tls"] = context
    return options
