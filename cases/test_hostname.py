"""Hostname: the spec's tutorial example. The hostname set in config.json is the one the
container's processes see, and it is not the host's."""

import socket

import pytest

pytestmark = pytest.mark.requires("root")

HOSTNAME = "HAL-9000"


def set_hostname(config):
    config["hostname"] = HOSTNAME


@pytest.mark.spec("config.hostname.applied", "runtime.lifecycle.create-environment")
def test_hostname_is_seen_inside(runtime, run_probe):
    container, out = run_probe("hostname", edit=set_hostname)
    assert out == HOSTNAME + "\n", f"expected the probe to print {HOSTNAME!r}, it printed {out!r}"
    assert out.strip() != socket.gethostname(), "the container sees the host's hostname"


@pytest.mark.spec("config.hostname.applied")
def test_uname_nodename_is_the_hostname(runtime, run_probe):
    _, report = run_probe("report", edit=set_hostname)
    assert report["hostname"] == HOSTNAME
    assert report["uname"]["nodename"] == HOSTNAME


@pytest.mark.spec("config.hostname.uts-only")
def test_host_hostname_unchanged(runtime, run_probe):
    before = socket.gethostname()
    run_probe("hostname", edit=set_hostname)
    assert socket.gethostname() == before
