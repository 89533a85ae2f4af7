"""User namespace mappings in their less common forms (config-linux.md "User namespace mappings"):
gidMappings that differ from uidMappings, and mappings of several ranges. The id maps are read
from /proc/PID/{uid,gid}_map of the created container's process, on the host."""

from pathlib import Path

import pytest

from harness.pytest_plugin import USERNS_HOST_ID, USERNS_SIZE

pytestmark = [pytest.mark.requires("root"), pytest.mark.requires("userns")]

# container ids 0..999 and 1000..USERNS_SIZE-1 mapped to two host ranges, different for uids and gids
SPLIT = 1000
UID_MAP = [(0, USERNS_HOST_ID, SPLIT), (SPLIT, USERNS_HOST_ID + 2 * USERNS_SIZE, USERNS_SIZE - SPLIT)]
GID_MAP = [(0, USERNS_HOST_ID + USERNS_SIZE, SPLIT), (SPLIT, USERNS_HOST_ID + 3 * USERNS_SIZE, USERNS_SIZE - SPLIT)]


def id_map(pid, kind):
    return sorted(
        tuple(int(x) for x in line.split()) for line in Path(f"/proc/{pid}/{kind}_map").read_text().splitlines()
    )


def mappings(config):
    config["linux"]["uidMappings"] = [{"containerID": c, "hostID": h, "size": s} for c, h, s in UID_MAP]
    config["linux"]["gidMappings"] = [{"containerID": c, "hostID": h, "size": s} for c, h, s in GID_MAP]


@pytest.mark.spec("linux.user-namespace-mappings.uid", "linux.user-namespace-mappings.gid")
def test_uid_and_gid_mappings_of_several_ranges_each(runtime, userns_bundle, container_factory):
    c = container_factory(userns_bundle("exit", "0", edit=mappings))
    c.create()
    uid_map, gid_map = id_map(c.pid, "uid"), id_map(c.pid, "gid")
    c.start()
    c.wait()
    assert uid_map == UID_MAP, f"/proc/{c.pid}/uid_map is {uid_map}, expected the uidMappings {UID_MAP}"
    assert gid_map == GID_MAP, (
        f"/proc/{c.pid}/gid_map is {gid_map}, expected the gidMappings {GID_MAP} (not the uid mappings)"
    )
