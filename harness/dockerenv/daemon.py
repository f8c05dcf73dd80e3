"""Reaching the Docker daemon and the images a run needs, with errors that say how to fix it."""

from __future__ import annotations

import logging
import os

import docker
import requests
from docker.errors import DockerException, ImageNotFound

from harness.dockerenv.errors import DaemonUnavailable, ImageMissing

log = logging.getLogger(__name__)


def connect(base_url: str | None = None, *, timeout: int = 120) -> docker.DockerClient:
    """A client for the daemon at ``base_url`` (default: ``DOCKER_HOST`` or the local socket) that answered a ping."""
    where = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient(base_url=base_url, timeout=timeout) if base_url else docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, requests.RequestException, OSError) as exc:
        raise DaemonUnavailable(
            f"cannot reach a Docker daemon at {where} ({_reason(exc)}); start it (`sudo systemctl start docker`, "
            "or open Docker Desktop), make sure your user may use it (the docker group), or point DOCKER_HOST "
            "at a running daemon"
        ) from None
    return client


def ensure_image(client: docker.DockerClient, ref: str, *, pull: bool, how: str) -> None:
    """Make sure ``ref`` is on this machine: present, or pulled when ``pull`` is allowed."""
    try:
        client.images.get(ref)
        return
    except ImageNotFound:
        pass
    if not pull:
        raise ImageMissing(f"the image {ref} is not on this machine; {how}")
    log.info("pulling %s", ref)
    try:
        client.images.pull(ref)
    except (DockerException, requests.RequestException) as exc:
        raise ImageMissing(f"the image {ref} is not on this machine and pulling it failed ({_reason(exc)}); "
                           f"{how}") from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
