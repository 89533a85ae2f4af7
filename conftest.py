# The harness's pytest plugin (options, markers, fixtures) serves both the conformance cases in
# cases/ and the harness's own tests in tests/.
pytest_plugins = ["harness.pytest_plugin"]
