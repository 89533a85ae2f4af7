"""The one way a case expects a runtime to refuse a config (runtime.md "Errors")."""

import pytest

from harness.runtime import RuntimeCallError


def expect_error(c, what):
    """create, or else start, must fail; a failed create leaves no container behind.

    The spec does not say at which operation an invalid value must be refused, so either will
    do; a container whose create and start both succeed is the failure, named by ``what``.
    """
    try:
        c.create()
    except RuntimeCallError:
        with pytest.raises(RuntimeCallError):
            c.runtime.state(c.id)
        return
    try:
        c.start()
    except RuntimeCallError:
        return
    end = c.wait()
    pytest.fail(
        f"{what}: create and start both succeeded (the process ended with {end}, printing {c.stdout()!r}); expected an error"
    )
