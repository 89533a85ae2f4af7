"""Hostname: the spec's tutorial example. The hostname set in config.json is the one the
container's processes see, and it is not the host's."""

import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires("root")

HOSTNAME = "HAL-9000"


def set_hostname(config):
    config["hostname"] = HOSTNAME


@pytest.mark.spec("config.hostname.applied", "runtime.lifecycle.create-environment")
def test_hostname_is_seen_inside(runtime, run_probe, host_baseline):
    _container, out = run_probe("hostname", edit=set_hostname)
    assert out == HOSTNAME + "\n", f"expected the probe to print {HOSTNAME!r}, it printed {out!r}"
    assert out.strip() != host_baseline["kernel.hostname"].strip(), "the container sees the host's hostname"


@pytest.mark.spec("config.hostname.applied")
def test_uname_nodename_is_the_hostname(runtime, run_probe):
    _, report = run_probe("report", edit=set_hostname)
    assert report["hostname"] == HOSTNAME
    assert report["uname"]["nodename"] == HOSTNAME


@pytest.mark.spec("config.hostname.uts-only")
def test_host_hostname_unchanged(runtime, run_probe, host_baseline):
    # the host's before the run: a neighbour worker's container may have changed it since
    before = host_baseline["kernel.hostname"].strip()
    run_probe("hostname", edit=set_hostname)
    after = socket.gethostname()
    assert after == before, f"the host's hostname changed from {before!r} to {after!r}"


# --------------------------------------------------------------------------------------------
# domainname (config.md "Domainname", spec v1.1.0)

DOMAINNAME = "discovery.one"
DOMAINNAME_SINCE = pytest.mark.feature("ociVersionMax", at_least="1.1.0", what="domainname")


def set_domainname(config):
    config["domainname"] = DOMAINNAME


@DOMAINNAME_SINCE
@pytest.mark.spec("config.domainname.applied")
def test_domainname_is_seen_inside(runtime, run_probe):
    _, report = run_probe("report", edit=set_domainname)
    assert report["domainname"] == DOMAINNAME, (
        f"the container's domainname is {report['domainname']!r}, expected {DOMAINNAME!r}"
    )


@DOMAINNAME_SINCE
@pytest.mark.spec("config.domainname.uts-only")
def test_host_domainname_unchanged(runtime, run_probe, host_baseline):
    host_file = Path("/proc/sys/kernel/domainname")
    before = host_baseline["kernel.domainname"].strip()
    _, report = run_probe("report", edit=set_domainname)
    assert report["domainname"] == DOMAINNAME
    after = host_file.read_text().strip()
    assert after == before, f"the host's domainname changed from {before!r} to {after!r}"
