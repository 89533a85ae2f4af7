"""Root (config.md "Root"): the root filesystem is the directory root.path names, relative to
the bundle or absolute; it is read-only inside the container when root.readonly is true, and
writable otherwise."""

import shutil

import pytest
from _errors import expect_create_error

pytestmark = pytest.mark.requires("root")


def run(c):
    c.create()
    c.start()
    return c.wait()


@pytest.mark.spec("config.root.readonly")
def test_readonly_root_refuses_writes(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("write", "/written", "yes", readonly=True)
    c = container_factory(bundle)
    end = run(c)
    assert end.code in (1, None), (
        f"writing to / of a read-only root: expected the probe to fail with status 1, got {end}"
    )
    assert "Read-only file system" in c.stderr(), f"expected EROFS, the probe said {c.stderr()!r}"
    assert not (bundle.rootfs / "written").exists(), "the write reached the bundle's rootfs"


@pytest.mark.parametrize("setting", ["unset", "false"])
@pytest.mark.spec("config.root.readonly-default")
def test_root_is_writable_unless_readonly(runtime, bundle_factory, container_factory, setting):
    def edit(config):
        if setting == "unset":
            config["root"].pop("readonly", None)
        else:
            config["root"]["readonly"] = False

    bundle = bundle_factory("write", "/written", "yes", edit=edit)
    c = container_factory(bundle)
    end = run(c)
    assert end.code in (0, None), f"writing to / with readonly {setting}: the probe exited {end}, saying {c.stderr()!r}"
    assert (bundle.rootfs / "written").read_text() == "yes"


@pytest.mark.spec("config.root.path-relative")
def test_relative_root_path_is_relative_to_the_bundle(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("write", "/written", "relative")
    (bundle.path / "rootfs").rename(bundle.path / "my-root")
    bundle.edit(lambda config: config["root"].update(path="my-root"))
    c = container_factory(bundle)
    # The runtime runs in the harness's working directory, which has no my-root.
    end = run(c)
    assert end.code in (0, None), f"the probe in the bundle's my-root exited {end}: {c.stderr()!r}"
    assert (bundle.path / "my-root" / "written").read_text() == "relative"


@pytest.mark.spec("config.root.path-absolute")
def test_absolute_root_path(runtime, bundle_factory, container_factory, tmp_path):
    bundle = bundle_factory("write", "/written", "absolute")
    elsewhere = tmp_path / "elsewhere" / "root"
    elsewhere.parent.mkdir()
    shutil.move(str(bundle.path / "rootfs"), str(elsewhere))
    bundle.edit(lambda config: config["root"].update(path=str(elsewhere)))
    c = container_factory(bundle)
    end = run(c)
    assert end.code in (0, None), f"the probe in {elsewhere} exited {end}: {c.stderr()!r}"
    assert (elsewhere / "written").read_text() == "absolute"


@pytest.mark.spec("config.root.path-directory", "runtime.errors.no-change")
def test_missing_root_directory_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0")
    bundle.edit(lambda config: config["root"].update(path="no-such-rootfs"))
    expect_create_error(container_factory(bundle), "root.path names no directory")


@pytest.mark.spec("config.root.required", "config.valid-values.error")
def test_config_without_root_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0")
    bundle.edit(lambda config: config.pop("root"), validate=False)
    expect_create_error(container_factory(bundle), "config.json has no root")
