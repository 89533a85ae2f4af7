"""Fixtures shared by the case files (the harness's own fixtures come from harness.pytest_plugin)."""

from _cgroups import cgroups_path  # noqa: F401 (a fixture: a cgroupsPath unique to the case)
